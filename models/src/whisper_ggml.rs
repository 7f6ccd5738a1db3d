//! CTranslate2 Whisper model -> whisper.cpp ggml file.
//!
//! No registry ships Whisper in whisper.cpp's format, so the project converts what it can get. The
//! output holds, in order: the hyper-parameters, the 80-bin mel filterbank (computed in [`crate::mel`]),
//! the byte-level vocabulary, and every tensor under the name and layout whisper.cpp's loader expects.
//! CTranslate2 fuses the attention projections (`[q; k; v]` in self-attention, `[k; v]` in
//! cross-attention) and renames everything; this module splits and renames them back. Whisper's key
//! projection has no bias, so that third of the fused bias is dropped.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::ct2::Ct2Model;
use crate::WhisperPrecision;

const GGML_MAGIC: u32 = 0x6767_6d6c;
const GGML_TYPE_F32: i32 = 0;
const GGML_TYPE_F16: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Ct2(#[from] crate::ct2::Ct2Error),
    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// What a conversion produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    pub output: PathBuf,
    pub precision: WhisperPrecision,
    pub tensors: usize,
    pub bytes: u64,
    pub n_vocab: usize,
    pub multilingual: bool,
}

/// How a tensor is stored in the ggml file: whisper.cpp checks each tensor's byte size against the
/// type it expects, so these classes must match its loader exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Storage {
    /// Biases, layer norms, positional embeddings: always f32.
    F32,
    /// Convolution kernels: always f16 (an f32 kernel loads but aborts at the first encode).
    F16,
    /// 2-D weight matrices and the token embedding: f16 or quantized.
    Weight,
}

struct Tensor {
    name: String,
    /// Shape in PyTorch order (outermost first); written reversed, as ggml counts dimensions.
    shape: Vec<usize>,
    data: Vec<f32>,
    storage: Storage,
}

/// GPT-2's byte-level alphabet: the printable character standing for each byte in `vocabulary.txt`.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::new();
    let mut extra = 0;
    for b in 0u32..256 {
        let ch = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map.insert(char::from_u32(ch).expect("below 512 is valid"), b as u8);
    }
    map
}

/// The vocabulary's ordinary tokens (those before `<|endoftext|>`) as raw bytes; whisper.cpp adds the
/// special tokens itself.
fn read_vocabulary(path: &Path) -> Result<Vec<Vec<u8>>, ConvertError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConvertError::Read { path: path.to_path_buf(), source })?;
    let decoder = byte_decoder();
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line == "<|endoftext|>" {
            return Ok(tokens);
        }
        let bytes = line.chars().map(|c| decoder.get(&c).copied()).collect::<Option<Vec<u8>>>().ok_or_else(
            || ConvertError::Model {
                path: path.to_path_buf(),
                reason: format!("line {}: {line:?} is not a GPT-2 byte-level token", i + 1),
            },
        )?;
        tokens.push(bytes);
    }
    Err(ConvertError::Model { path: path.to_path_buf(), reason: "no <|endoftext|> token".into() })
}

struct Hparams {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_audio_state: usize,
    n_audio_head: usize,
    n_audio_layer: usize,
    n_text_ctx: usize,
    n_text_state: usize,
    n_text_head: usize,
    n_text_layer: usize,
    n_mels: usize,
}

fn count_layers(model: &Ct2Model, prefix: &str) -> usize {
    (0..).take_while(|i| model.variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))).count()
}

fn hparams(m: &Ct2Model) -> Result<Hparams, String> {
    let dim = |name: &str, axis: usize| -> Result<usize, String> {
        m.get(name)?.dims.get(axis).copied().ok_or_else(|| format!("{name} has no axis {axis}"))
    };
    let heads = |name: &str| -> Result<usize, String> {
        m.get(name)?.scalar_int().map(|h| h as usize).ok_or_else(|| format!("{name} is not an integer"))
    };
    Ok(Hparams {
        n_vocab: dim("decoder/embeddings/weight", 0)?,
        n_audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
        n_audio_state: dim("encoder/position_encodings/encodings", 1)?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: count_layers(m, "encoder"),
        n_text_ctx: dim("decoder/position_encodings/encodings", 0)?,
        n_text_state: dim("decoder/position_encodings/encodings", 1)?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: count_layers(m, "decoder"),
        n_mels: dim("encoder/conv1/weight", 1)?,
    })
}

/// Collects the tensors in whisper.cpp's naming, splitting CTranslate2's fused projections.
struct Builder<'a> {
    model: &'a Ct2Model,
    out: Vec<Tensor>,
}

impl Builder<'_> {
    fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        let v = self.model.get(name)?;
        let data = v.to_f32().ok_or_else(|| format!("{name} is not a float tensor"))?;
        Ok((v.dims.clone(), data))
    }

    fn push(&mut self, name: String, shape: Vec<usize>, data: Vec<f32>, storage: Storage) {
        self.out.push(Tensor { name, shape, data, storage });
    }

    /// A tensor copied as it is.
    fn copy(&mut self, from: &str, to: &str, storage: Storage) -> Result<(), String> {
        let (dims, data) = self.values(from)?;
        self.push(to.to_string(), dims, data, storage);
        Ok(())
    }

    /// A layer norm (`gamma`, `beta`) -> (`weight`, `bias`).
    fn norm(&mut self, from: &str, to: &str) -> Result<(), String> {
        self.copy(&format!("{from}/gamma"), &format!("{to}.weight"), Storage::F32)?;
        self.copy(&format!("{from}/beta"), &format!("{to}.bias"), Storage::F32)
    }

    /// A plain linear layer.
    fn linear(&mut self, from: &str, to: &str) -> Result<(), String> {
        self.copy(&format!("{from}/weight"), &format!("{to}.weight"), Storage::Weight)?;
        self.copy(&format!("{from}/bias"), &format!("{to}.bias"), Storage::F32)
    }

    /// A fused linear layer whose rows stack several projections of `d` rows each; `parts` names
    /// them in order, and a part named with `keep_bias == false` (the key) loses its bias.
    fn fused(&mut self, from: &str, parts: &[(&str, bool)]) -> Result<(), String> {
        let (wdims, w) = self.values(&format!("{from}/weight"))?;
        let (_, b) = self.values(&format!("{from}/bias"))?;
        let (rows, cols) = match wdims.as_slice() {
            [r, c] => (*r, *c),
            _ => return Err(format!("{from}/weight is not 2-D")),
        };
        if rows % parts.len() != 0 || b.len() != rows {
            return Err(format!("{from}: {rows} rows cannot be split into {} projections", parts.len()));
        }
        let d = rows / parts.len();
        for (i, (name, keep_bias)) in parts.iter().enumerate() {
            self.push(format!("{name}.weight"), vec![d, cols], w[i * d * cols..(i + 1) * d * cols].to_vec(), Storage::Weight);
            if *keep_bias {
                self.push(format!("{name}.bias"), vec![d], b[i * d..(i + 1) * d].to_vec(), Storage::F32);
            }
        }
        Ok(())
    }

    fn ffn(&mut self, from: &str, to: &str) -> Result<(), String> {
        self.norm(&format!("{from}/ffn/layer_norm"), &format!("{to}.mlp_ln"))?;
        self.linear(&format!("{from}/ffn/linear_0"), &format!("{to}.mlp.0"))?;
        self.linear(&format!("{from}/ffn/linear_1"), &format!("{to}.mlp.2"))
    }

    fn self_attention(&mut self, from: &str, to: &str) -> Result<(), String> {
        self.norm(&format!("{from}/self_attention/layer_norm"), &format!("{to}.attn_ln"))?;
        self.fused(
            &format!("{from}/self_attention/linear_0"),
            &[(&format!("{to}.attn.query"), true), (&format!("{to}.attn.key"), false), (&format!("{to}.attn.value"), true)],
        )?;
        self.linear(&format!("{from}/self_attention/linear_1"), &format!("{to}.attn.out"))
    }

    /// A conv bias becomes shape (n, 1), as whisper.cpp broadcasts it over time.
    fn conv(&mut self, idx: u8) -> Result<(), String> {
        self.copy(&format!("encoder/conv{idx}/weight"), &format!("encoder.conv{idx}.weight"), Storage::F16)?;
        let (dims, data) = self.values(&format!("encoder/conv{idx}/bias"))?;
        self.push(format!("encoder.conv{idx}.bias"), vec![dims[0], 1], data, Storage::F32);
        Ok(())
    }
}

fn build_tensors(model: &Ct2Model, hp: &Hparams) -> Result<Vec<Tensor>, String> {
    let mut b = Builder { model, out: Vec::new() };
    b.copy("encoder/position_encodings/encodings", "encoder.positional_embedding", Storage::F32)?;
    b.conv(1)?;
    b.conv(2)?;
    for i in 0..hp.n_audio_layer {
        let (from, to) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        b.self_attention(&from, &to)?;
        b.ffn(&from, &to)?;
    }
    b.norm("encoder/layer_norm", "encoder.ln_post")?;

    b.copy("decoder/position_encodings/encodings", "decoder.positional_embedding", Storage::F32)?;
    b.copy("decoder/embeddings/weight", "decoder.token_embedding.weight", Storage::Weight)?;
    for i in 0..hp.n_text_layer {
        let (from, to) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        b.self_attention(&from, &to)?;
        b.norm(&format!("{from}/attention/layer_norm"), &format!("{to}.cross_attn_ln"))?;
        b.linear(&format!("{from}/attention/linear_0"), &format!("{to}.cross_attn.query"))?;
        b.fused(
            &format!("{from}/attention/linear_1"),
            &[(&format!("{to}.cross_attn.key"), false), (&format!("{to}.cross_attn.value"), true)],
        )?;
        b.linear(&format!("{from}/attention/linear_2"), &format!("{to}.cross_attn.out"))?;
        b.ffn(&from, &to)?;
    }
    b.norm("decoder/layer_norm", "decoder.ln")?;
    Ok(b.out)
}

/// ggml type id and whisper.cpp file `ftype` for a precision.
fn ggml_types(precision: WhisperPrecision) -> (i32, i32) {
    use whisper_rs::whisper_rs_sys as sys;
    let qnt = (sys::GGML_QNT_VERSION * sys::GGML_QNT_VERSION_FACTOR) as i32;
    match precision {
        WhisperPrecision::F16 => (GGML_TYPE_F16, 1),
        WhisperPrecision::Q8_0 => (sys::ggml_type_GGML_TYPE_Q8_0 as i32, qnt + sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0 as i32),
        WhisperPrecision::Q5_1 => (sys::ggml_type_GGML_TYPE_Q5_1 as i32, qnt + sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1 as i32),
    }
}

/// Quantizes a row-major matrix with ggml's own quantizer (the one whisper.cpp's `quantize` uses).
fn quantize(ggml_type: i32, data: &[f32], n_per_row: usize) -> Vec<u8> {
    use whisper_rs::whisper_rs_sys as sys;
    let nrows = data.len() / n_per_row;
    // SAFETY: ggml_row_size is a pure function of the type and row length.
    let row_bytes = unsafe { sys::ggml_row_size(ggml_type as sys::ggml_type, n_per_row as i64) };
    let mut out = vec![0u8; row_bytes * nrows];
    // SAFETY: `data` holds nrows * n_per_row floats and `out` has room for nrows quantized rows of that
    // length; the quantization types used here take no importance matrix.
    let written = unsafe {
        sys::ggml_quantize_chunk(
            ggml_type as sys::ggml_type,
            data.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            nrows as i64,
            n_per_row as i64,
            std::ptr::null(),
        )
    };
    out.truncate(written);
    out
}

fn write_i32s(w: &mut impl Write, values: &[i32]) -> std::io::Result<()> {
    values.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))
}

fn encode(t: &Tensor, weight_type: i32) -> (i32, Vec<u8>) {
    let f16 = |d: &[f32]| d.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
    let n_per_row = *t.shape.last().unwrap_or(&1);
    match t.storage {
        Storage::F32 => (GGML_TYPE_F32, t.data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        Storage::F16 => (GGML_TYPE_F16, f16(&t.data)),
        // ggml quantizes whole blocks of 32 along a row; whisper.cpp leaves other shapes in f16.
        Storage::Weight if weight_type == GGML_TYPE_F16 || n_per_row % 32 != 0 => (GGML_TYPE_F16, f16(&t.data)),
        Storage::Weight => (weight_type, quantize(weight_type, &t.data, n_per_row)),
    }
}

/// Converts the CTranslate2 model in `ct2_dir` (model.bin + vocabulary.txt) into a whisper.cpp file.
/// Writes to a temporary name first, so an interrupted run never leaves a half file under `out`.
pub fn convert(ct2_dir: &Path, out: &Path, precision: WhisperPrecision) -> Result<ConvertReport, ConvertError> {
    let model_path = ct2_dir.join("model.bin");
    let model = Ct2Model::load(&model_path)?;
    let bad = |reason: String| ConvertError::Model { path: model_path.clone(), reason };
    if model.spec != "WhisperSpec" {
        return Err(bad(format!("spec {:?} is not a Whisper model", model.spec)));
    }
    let hp = hparams(&model).map_err(bad)?;
    let vocab = read_vocabulary(&ct2_dir.join("vocabulary.txt"))?;
    let tensors = build_tensors(&model, &hp).map_err(bad)?;
    let (weight_type, ftype) = ggml_types(precision);

    let partial = out.with_extension("partial");
    let werr = |source| ConvertError::Write { path: out.to_path_buf(), source };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let file = std::fs::File::create(&partial).map_err(werr)?;
    let mut w = BufWriter::new(file);
    (|| -> std::io::Result<()> {
        w.write_all(&GGML_MAGIC.to_le_bytes())?;
        let h = &hp;
        write_i32s(
            &mut w,
            &[h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer, h.n_text_ctx,
              h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels]
                .map(|v| v as i32),
        )?;
        write_i32s(&mut w, &[ftype])?;
        let n_fft = 400;
        let filters = crate::mel::mel_filters(16_000, n_fft, h.n_mels);
        write_i32s(&mut w, &[h.n_mels as i32, (n_fft / 2 + 1) as i32])?;
        filters.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
        write_i32s(&mut w, &[vocab.len() as i32])?;
        for token in &vocab {
            write_i32s(&mut w, &[token.len() as i32])?;
            w.write_all(token)?;
        }
        for t in &tensors {
            let (ttype, bytes) = encode(t, weight_type);
            write_i32s(&mut w, &[t.shape.len() as i32, t.name.len() as i32, ttype])?;
            write_i32s(&mut w, &t.shape.iter().rev().map(|&d| d as i32).collect::<Vec<_>>())?;
            w.write_all(t.name.as_bytes())?;
            w.write_all(&bytes)?;
        }
        w.flush()
    })()
    .map_err(werr)?;
    drop(w);
    std::fs::rename(&partial, out).map_err(werr)?;
    let bytes = std::fs::metadata(out).map_err(werr)?.len();
    Ok(ConvertReport {
        output: out.to_path_buf(),
        precision,
        tensors: tensors.len(),
        bytes,
        n_vocab: hp.n_vocab,
        multilingual: hp.n_vocab >= 51865,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_decoder_covers_every_byte_once() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        let mut seen: Vec<u8> = d.values().copied().collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'a'], b'a');
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{path}: Whisper model file not found; run scripts/setup.sh to fetch and convert the models")]
    Missing { path: PathBuf },
    #[error("{path}: cannot read the Whisper model: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a usable whisper.cpp model file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Bytes of `n` values of a ggml type in a whisper.cpp file, if the type is one it uses.
fn ggml_bytes(ttype: i32, n: u64) -> Option<u64> {
    match ttype {
        0 => Some(n * 4),
        1 => Some(n * 2),
        // Block types: 32 values per block.
        6 => Some(n / 32 * 22),  // q5_0
        7 => Some(n / 32 * 24),  // q5_1
        8 => Some(n / 32 * 34),  // q8_0
        2 => Some(n / 32 * 18),  // q4_0
        3 => Some(n / 32 * 20),  // q4_1
        _ => None,
    }
}

/// Walks a whisper.cpp model file's structure (header, filters, vocabulary, tensor table) without
/// loading the weights, so a truncated or foreign file is refused with a reason before whisper.cpp
/// sees it. Returns the number of tensors.
pub fn validate(path: &Path) -> Result<usize, ValidateError> {
    use std::io::{Read, Seek, SeekFrom};
    let corrupt = |reason: String| ValidateError::Corrupt { path: path.to_path_buf(), reason };
    let file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ValidateError::Missing { path: path.to_path_buf() }
        } else {
            ValidateError::Io { path: path.to_path_buf(), source }
        }
    })?;
    let len = file.metadata().map_err(|source| ValidateError::Io { path: path.to_path_buf(), source })?.len();
    let mut r = std::io::BufReader::new(file);
    let mut pos = 0u64;
    let read_i32 = |r: &mut std::io::BufReader<std::fs::File>, pos: &mut u64, what: &str| -> Result<i32, ValidateError> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).map_err(|_| corrupt(format!("truncated at byte {pos} ({what})")))?;
        *pos += 4;
        Ok(i32::from_le_bytes(b))
    };
    let skip = |r: &mut std::io::BufReader<std::fs::File>, pos: &mut u64, n: u64, what: &str| -> Result<(), ValidateError> {
        if *pos + n > len {
            return Err(ValidateError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("truncated: {what} needs {n} bytes at byte {pos}, the file has {len}"),
            });
        }
        r.seek(SeekFrom::Current(n as i64)).map_err(|source| ValidateError::Io { path: path.to_path_buf(), source })?;
        *pos += n;
        Ok(())
    };
    if read_i32(&mut r, &mut pos, "magic")? as u32 != GGML_MAGIC {
        return Err(corrupt("wrong magic number (not a ggml file)".into()));
    }
    let mut hp = [0i32; 11];
    for v in hp.iter_mut() {
        *v = read_i32(&mut r, &mut pos, "hyper-parameters")?;
    }
    if hp[..10].iter().any(|&v| v <= 0 || v > 1 << 20) {
        return Err(corrupt(format!("implausible hyper-parameters {hp:?}")));
    }
    let (n_mel, n_fft) = (read_i32(&mut r, &mut pos, "filters")?, read_i32(&mut r, &mut pos, "filters")?);
    if !(1..=512).contains(&n_mel) || !(1..=4096).contains(&n_fft) {
        return Err(corrupt(format!("implausible filterbank {n_mel} x {n_fft}")));
    }
    skip(&mut r, &mut pos, n_mel as u64 * n_fft as u64 * 4, "mel filters")?;
    let n_vocab = read_i32(&mut r, &mut pos, "vocabulary")?;
    if !(0..=1 << 20).contains(&n_vocab) {
        return Err(corrupt(format!("implausible vocabulary size {n_vocab}")));
    }
    for _ in 0..n_vocab {
        let n = read_i32(&mut r, &mut pos, "vocabulary")?;
        if !(0..=1024).contains(&n) {
            return Err(corrupt(format!("vocabulary entry of {n} bytes")));
        }
        skip(&mut r, &mut pos, n as u64, "vocabulary")?;
    }
    let mut tensors = 0;
    while pos < len {
        let n_dims = read_i32(&mut r, &mut pos, "tensor header")?;
        let name_len = read_i32(&mut r, &mut pos, "tensor header")?;
        let ttype = read_i32(&mut r, &mut pos, "tensor header")?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(corrupt(format!("bad tensor header at byte {pos} (dims {n_dims}, name length {name_len})")));
        }
        let mut n = 1u64;
        for _ in 0..n_dims {
            let d = read_i32(&mut r, &mut pos, "tensor shape")?;
            if d <= 0 {
                return Err(corrupt(format!("tensor dimension {d} at byte {pos}")));
            }
            n = n.saturating_mul(d as u64);
        }
        skip(&mut r, &mut pos, name_len as u64, "tensor name")?;
        let bytes = ggml_bytes(ttype, n).ok_or_else(|| corrupt(format!("unknown tensor type {ttype} at byte {pos}")))?;
        skip(&mut r, &mut pos, bytes, "tensor data")?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(corrupt("no tensors".into()));
    }
    Ok(tensors)
}
