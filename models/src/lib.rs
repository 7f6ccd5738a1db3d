//! The models the project runs: where they are on disk ([`ModelDir`]), what `models/manifest.toml`
//! says about them, and the converter from CTranslate2 Whisper models (what the registries ship) to
//! whisper.cpp's ggml format (what whisper-rs reads).

pub mod ct2;
pub mod mel;
pub mod whisper_ggml;

use std::path::{Path, PathBuf};

/// Environment variable that overrides where `models/` is (for installs outside the repository).
pub const MODELS_DIR_ENV: &str = "IVR_MODELS_DIR";

/// The Whisper model sizes the project ships.
pub const WHISPER_MODELS: &[&str] = &["tiny.en", "base"];

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error(
        "cannot find the models directory (a `models/` with `manifest.toml` beside the program or the \
         current directory); run scripts/setup.sh, or set {MODELS_DIR_ENV}"
    )]
    NotFound,
    #[error("{path}: missing model file ({what}); run scripts/setup.sh to fetch and convert the models")]
    Missing { path: PathBuf, what: String },
}

/// The nearest directory holding `rel`, above the running program (so `target/release/ivr` finds the
/// repository's files) or else above the current directory.
pub fn find_upwards(rel: &str) -> Option<PathBuf> {
    let starts = [std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)), std::env::current_dir().ok()];
    starts.into_iter().flatten().find_map(|start| start.ancestors().find(|d| d.join(rel).is_file()).map(Path::to_path_buf))
}

/// Precision of a converted whisper.cpp model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhisperPrecision {
    F16,
    Q8_0,
    Q5_1,
}

impl WhisperPrecision {
    pub const ALL: [WhisperPrecision; 3] = [Self::F16, Self::Q8_0, Self::Q5_1];

    pub fn suffix(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
            Self::Q5_1 => "q5_1",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.suffix() == s)
    }
}

/// The `models/` directory: the manifest and, under `data/`, the fetched and converted files.
#[derive(Debug, Clone)]
pub struct ModelDir {
    root: PathBuf,
}

impl ModelDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Finds `models/`: `$IVR_MODELS_DIR`, else the nearest `models/manifest.toml` above the running
    /// program (so `target/release/ivr` finds the repository's), else above the current directory.
    pub fn locate() -> Result<Self, ModelDirError> {
        if let Some(dir) = std::env::var_os(MODELS_DIR_ENV) {
            return Ok(Self::new(dir));
        }
        find_upwards("models/manifest.toml").map(|dir| Self::new(dir.join("models"))).ok_or(ModelDirError::NotFound)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("manifest.toml")
    }

    /// Directory of the CTranslate2 original of a Whisper model (`tiny.en`, `base`).
    pub fn whisper_ct2(&self, model: &str) -> PathBuf {
        self.data().join("whisper").join(model).join("ct2")
    }

    /// The converted whisper.cpp file of a Whisper model.
    pub fn whisper_ggml(&self, model: &str, precision: WhisperPrecision) -> PathBuf {
        self.data()
            .join("whisper")
            .join(model)
            .join(format!("ggml-{model}-{}.bin", precision.suffix()))
    }

    pub fn piper_voices(&self) -> PathBuf {
        self.data().join("piper")
    }

    pub fn silero_vad(&self) -> PathBuf {
        self.data().join("vad/silero_vad.onnx")
    }

    /// Smart Turn v3.2, the learned end-of-turn model.
    pub fn smart_turn(&self) -> PathBuf {
        self.data().join("turn/smart-turn-v3.2-cpu.onnx")
    }

    pub fn onnxruntime_lib(&self) -> PathBuf {
        self.data().join("onnxruntime/libonnxruntime.so")
    }

    /// `path` if it exists, else an error telling the user to run setup.
    pub fn require(&self, path: PathBuf, what: &str) -> Result<PathBuf, ModelDirError> {
        if path.exists() {
            Ok(path)
        } else {
            Err(ModelDirError::Missing { path, what: what.to_string() })
        }
    }

    /// The manifest's packages, for `ivr models list`.
    pub fn manifest(&self) -> Result<Manifest, ManifestError> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        toml::from_str(&text).map_err(|source| ManifestError::Parse { path, source })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
}

/// `models/manifest.toml`, as far as the program needs it (the fetch script reads the rest).
#[derive(Debug, serde::Deserialize)]
pub struct Manifest {
    pub package: Vec<ManifestPackage>,
}

#[derive(Debug, serde::Deserialize)]
pub struct ManifestPackage {
    pub id: String,
    pub what: String,
    pub pip: String,
    pub license: String,
    pub files: std::collections::BTreeMap<String, String>,
}
