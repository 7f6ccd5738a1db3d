//! Sentence embeddings on the device: all-MiniLM-L6-v2 (BERT, 384 dimensions) run with candle,
//! mean-pooled over the tokens and L2-normalised, so a dot product is the cosine similarity.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

/// Longer inputs are cut: a caller's turn is far shorter, and a 10,000-character paste must not
/// cost seconds.
const MAX_TOKENS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: cannot load the embedding model: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("embedding failed: {0}")]
    Run(String),
}

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let err = |path: PathBuf, e: &dyn std::fmt::Display| EmbedError::Load { path, reason: e.to_string() };
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| err(config_path.clone(), &e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| err(config_path.clone(), &e))?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| err(tok_path.clone(), &e))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| err(tok_path.clone(), &e))?;
        tokenizer.with_padding(None);
        let weights = dir.join("model.safetensors");
        let device = Device::Cpu;
        // SAFETY: the weights file is not modified while mapped (it belongs to models/data/).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &device) }
            .map_err(|e| err(weights.clone(), &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| err(weights.clone(), &e))?;
        Ok(Self { model, tokenizer, device })
    }

    /// Unit-length embeddings of the texts, one row each.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let run = |e: &dyn std::fmt::Display| EmbedError::Run(e.to_string());
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| run(&e))?;
        let len = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(1).max(1);
        let n = encodings.len();
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (i, e) in encodings.iter().enumerate() {
            for (j, &id) in e.get_ids().iter().enumerate() {
                ids[i * len + j] = id;
                mask[i * len + j] = 1;
            }
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device).map_err(|e| run(&e))?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device).map_err(|e| run(&e))?;
        let types = ids.zeros_like().map_err(|e| run(&e))?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(|e| run(&e))?;
        // Mean over real tokens, then L2 normalisation.
        let maskf = mask.to_dtype(DType::F32).and_then(|m| m.unsqueeze(2)).map_err(|e| run(&e))?;
        let summed = hidden.broadcast_mul(&maskf).and_then(|h| h.sum(1)).map_err(|e| run(&e))?;
        let counts = maskf.sum(1).map_err(|e| run(&e))?;
        let mean = summed.broadcast_div(&counts).map_err(|e| run(&e))?;
        let norm = mean.sqr().and_then(|s| s.sum_keepdim(1)).and_then(|s| s.sqrt()).map_err(|e| run(&e))?;
        let unit = mean.broadcast_div(&norm).map_err(|e| run(&e))?;
        unit.to_vec2::<f32>().map_err(|e| run(&e))
    }

    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed(&[text])?.pop().unwrap_or_default())
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
