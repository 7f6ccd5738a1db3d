//! Reader for CTranslate2's `model.bin` (format version 6), the form the registries ship Whisper in.
//!
//! Layout, all little-endian: u32 version, spec name (u16 length + bytes), u32 spec revision, u32
//! variable count, then each variable as name, u8 rank, rank x u32 dims, u8 dtype, u32 byte count and
//! the data; then u32 alias count and (alias, target) name pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a CTranslate2 model: {reason}")]
    Format { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One named tensor of the model.
#[derive(Debug, Clone)]
pub struct Variable {
    pub dims: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Variable {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32, whatever the stored float type.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self.dtype {
            DType::F32 => Some(
                self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            ),
            DType::F16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// A scalar integer (such as `encoder/num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if !self.dims.is_empty() {
            return None;
        }
        match self.dtype {
            DType::I8 => self.data.first().map(|&b| b as i8 as i64),
            DType::I16 => self.data.get(..2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i64),
            DType::I32 => self.data.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            _ => None,
        }
    }
}

/// A whole CTranslate2 model: its spec name and variables by name.
#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Variable>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!("truncated at byte {} (wanted {n} more bytes of {})", self.pos, self.data.len())
        })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8(bytes[..end].to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    }
}

impl Ct2Model {
    pub fn load(path: &Path) -> Result<Self, Ct2Error> {
        let bytes =
            std::fs::read(path).map_err(|source| Ct2Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(&bytes).map_err(|reason| Ct2Error::Format { path: path.to_path_buf(), reason })
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut c = Cursor { data: bytes, pos: 0 };
        let version = c.u32()?;
        if version != 6 {
            return Err(format!("binary version {version}, this reader knows version 6"));
        }
        let spec = c.string()?;
        let revision = c.u32()?;
        let count = c.u32()?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = c.string()?;
            let rank = c.u8()? as usize;
            let dims = (0..rank).map(|_| c.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let code = c.u8()?;
            let dtype =
                DType::from_code(code).ok_or_else(|| format!("variable {name}: unknown dtype {code}"))?;
            let nbytes = c.u32()? as usize;
            let expected = dims.iter().product::<usize>() * dtype.size();
            if nbytes != expected {
                return Err(format!("variable {name}: {nbytes} bytes for dims {dims:?} (expected {expected})"));
            }
            let data = c.take(nbytes)?.to_vec();
            variables.insert(name, Variable { dims, dtype, data });
        }
        // Aliases (e.g. decoder/projection/weight -> decoder/embeddings/weight) may follow.
        if c.pos < bytes.len() {
            let aliases = c.u32()?;
            for _ in 0..aliases {
                let alias = c.string()?;
                let target = c.string()?;
                if let Some(v) = variables.get(&target).cloned() {
                    variables.insert(alias, v);
                }
            }
        }
        Ok(Self { spec, revision, variables })
    }

    pub fn get(&self, name: &str) -> Result<&Variable, String> {
        self.variables.get(name).ok_or_else(|| format!("variable {name} is missing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_bytes(vars: &[(&str, &[u32], u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(6u32.to_le_bytes());
        let spec = b"WhisperSpec";
        out.extend((spec.len() as u16).to_le_bytes());
        out.extend(spec);
        out.extend(3u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(name.as_bytes());
            out.push(dims.len() as u8);
            for d in *dims {
                out.extend(d.to_le_bytes());
            }
            out.push(*dtype);
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(*data);
        }
        out.extend(0u32.to_le_bytes());
        out
    }

    #[test]
    fn reads_variables_and_scalars() {
        let one = half::f16::from_f32(1.5).to_le_bytes();
        let bytes = model_bytes(&[("a/w", &[1], 4, &one), ("a/num_heads", &[], 2, &6i16.to_le_bytes())]);
        let m = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.get("a/w").unwrap().to_f32().unwrap(), vec![1.5]);
        assert_eq!(m.get("a/num_heads").unwrap().scalar_int(), Some(6));
    }

    #[test]
    fn truncated_or_inconsistent_files_are_errors() {
        let bytes = model_bytes(&[("a/w", &[4], 4, &[0u8; 8])]);
        for cut in [0, 3, 10, 30, bytes.len() - 5] {
            assert!(Ct2Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let wrong = model_bytes(&[("a/w", &[4], 4, &[0u8; 6])]);
        assert!(Ct2Model::parse(&wrong).unwrap_err().contains("expected 8"));
    }
}
