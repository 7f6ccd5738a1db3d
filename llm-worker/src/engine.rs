//! The model, its one context and the prefix KV cache, owned by one inference thread. Requests
//! arrive over a channel and stream their tokens back over another, so HTTP threads never touch
//! llama.cpp.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// One generation request (the fields of the OpenAI API the worker honours, plus llama.cpp's
/// `grammar` extension for GBNF-constrained output).
#[derive(Debug, Clone)]
pub struct Request {
    pub messages: Vec<Message>,
    pub max_tokens: usize,
    pub temperature: f32,
    pub grammar: Option<String>,
    pub stop: Vec<String>,
}

/// What the inference thread sends back.
#[derive(Debug)]
pub enum Event {
    Token(String),
    Done(Stats),
    Error(String),
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV was reused from the previous request.
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub prompt_ms: f64,
    pub first_token_ms: f64,
    pub total_ms: f64,
    pub finish_reason: &'static str,
}

pub struct Engine {
    jobs: mpsc::Sender<(Request, mpsc::Sender<Event>)>,
    pub model_name: String,
}

/// SmolLM2's chat format (ChatML).
pub fn chatml(messages: &[Message]) -> String {
    let mut s = String::new();
    for m in messages {
        let role = match m.role.as_str() {
            "system" | "user" | "assistant" => m.role.as_str(),
            _ => "user",
        };
        // The template's markers cannot be smuggled in through content.
        let content = m.content.replace("<|im_start|>", "").replace("<|im_end|>", "");
        s.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
    }
    s.push_str("<|im_start|>assistant\n");
    s
}

impl Engine {
    pub fn start(model_path: &Path, threads: i32, n_ctx: u32) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let (jobs, job_rx) = mpsc::channel::<(Request, mpsc::Sender<Event>)>();
        let path = model_path.to_path_buf();
        std::thread::Builder::new().name("llm".into()).spawn(move || {
            let mut backend = match LlamaBackend::init() {
                Ok(b) => b,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("llama.cpp backend: {e}")));
                    return;
                }
            };
            backend.void_logs();
            let model = match LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default()) {
                Ok(m) => m,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("{}: cannot load the model: {e}", path.display())));
                    return;
                }
            };
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx))
                .with_n_batch(512)
                .with_n_threads(threads.max(1))
                .with_n_threads_batch(threads.max(1));
            let mut ctx = match model.new_context(&backend, params) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("cannot create a context: {e}")));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let mut cached: Vec<LlamaToken> = Vec::new();
            for (req, out) in job_rx {
                if let Err(e) = generate(&model, &mut ctx, &mut cached, &req, &out, n_ctx as usize) {
                    // The cache may be half-written: start clean next time.
                    ctx.clear_kv_cache();
                    cached.clear();
                    let _ = out.send(Event::Error(e));
                }
            }
        })?;
        ready_rx.recv().map_err(|_| anyhow::anyhow!("the inference thread died while loading"))??;
        Ok(Self { jobs, model_name: model_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default() })
    }

    /// Queues a request; tokens arrive on the returned channel.
    pub fn submit(&self, req: Request) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        if self.jobs.send((req, tx.clone())).is_err() {
            let _ = tx.send(Event::Error("the inference thread has stopped".into()));
        }
        rx
    }
}

fn generate(
    model: &LlamaModel,
    ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    cached: &mut Vec<LlamaToken>,
    req: &Request,
    out: &mpsc::Sender<Event>,
    n_ctx: usize,
) -> Result<(), String> {
    let started = Instant::now();
    let vocab = model.vocab();
    let prompt = vocab.tokenize(chatml(&req.messages).as_bytes(), false, true);
    if prompt.is_empty() {
        return Err("empty prompt".into());
    }
    if prompt.len() + req.max_tokens >= n_ctx {
        return Err(format!("prompt of {} tokens plus {} to generate exceeds the context of {n_ctx}", prompt.len(), req.max_tokens));
    }
    // Reuse the KV of the longest common prefix; at least the last prompt token is evaluated again
    // to get its logits.
    let mut keep = cached.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
    keep = keep.min(prompt.len() - 1);
    ctx.kv_cache_seq_rm(0, Some(keep as u32), None).map_err(|e| e.to_string())?;
    cached.truncate(keep);

    let mut batch = LlamaBatch::new(512, 1);
    let mut pos = keep;
    for chunk in prompt[keep..].chunks(512) {
        batch.clear();
        for (i, &t) in chunk.iter().enumerate() {
            let last = pos + i == prompt.len() - 1;
            batch.add(t, (pos + i) as i32, &[0], last).map_err(|e| e.to_string())?;
        }
        ctx.decode(&mut batch).map_err(|e| e.to_string())?;
        pos += chunk.len();
        cached.extend_from_slice(chunk);
    }
    let prompt_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut samplers = Vec::new();
    if let Some(g) = &req.grammar {
        samplers.push(LlamaSampler::grammar(model, g, "root").map_err(|e| format!("grammar: {e}"))?);
    }
    if req.temperature > 0.0 {
        samplers.push(LlamaSampler::temp(req.temperature));
        samplers.push(LlamaSampler::dist(1234));
    } else {
        samplers.push(LlamaSampler::greedy());
    }
    let mut sampler = LlamaSampler::chain_simple(samplers);

    let mut stats = Stats { prompt_tokens: prompt.len(), cached_tokens: keep, prompt_ms, ..Stats::default() };
    let mut text = String::new();
    let mut pending = Vec::new();
    let mut logits_at = batch.n_tokens() - 1;
    stats.finish_reason = "length";
    for n in 0..req.max_tokens {
        // `sample` also accepts the token into the chain (and so advances the grammar).
        let token = sampler.sample(ctx, logits_at);
        if vocab.is_eog(token) {
            stats.finish_reason = "stop";
            break;
        }
        pending.extend(vocab.token_to_piece(token, false, None));
        // Send only complete UTF-8 (a character may span tokens).
        let piece = match std::str::from_utf8(&pending) {
            Ok(s) => s.to_string(),
            Err(e) if e.error_len().is_none() => String::new(),
            Err(_) => String::from_utf8_lossy(&pending).into_owned(),
        };
        if !piece.is_empty() {
            pending.clear();
            if n == 0 || stats.first_token_ms == 0.0 {
                stats.first_token_ms = started.elapsed().as_secs_f64() * 1000.0;
            }
            text.push_str(&piece);
            if let Some(cut) = req.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                let before = text.len() - piece.len();
                if cut > before {
                    let _ = out.send(Event::Token(text[before..cut].to_string()));
                }
                stats.finish_reason = "stop";
                stats.completion_tokens = n + 1;
                break;
            }
            if out.send(Event::Token(piece)).is_err() {
                stats.finish_reason = "cancelled";
                break;
            }
        }
        stats.completion_tokens = n + 1;
        batch.clear();
        batch.add(token, pos as i32, &[0], true).map_err(|e| e.to_string())?;
        ctx.decode(&mut batch).map_err(|e| e.to_string())?;
        cached.push(token);
        pos += 1;
        logits_at = 0;
    }
    stats.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _ = out.send(Event::Done(stats));
    Ok(())
}
