//! The dialogue manager: what the bot says and does with each caller turn.
//!
//! - [`knowledge`]: the company's knowledge base and intents, plain TOML files it maintains.
//! - [`embed`]: sentence embeddings on the device (all-MiniLM-L6-v2 with candle).
//! - [`intent`]: nearest-neighbour intent recognition with a calibrated confidence.

pub mod embed;
pub mod grounding;
pub mod http;
pub mod intent;
pub mod knowledge;
pub mod llm;
pub mod manager;
pub mod policy;
pub mod slots;
pub mod store;
pub mod tools;
pub mod webhook;

use std::path::{Path, PathBuf};

/// Everything a tenant's dialogue needs, loaded once and shared by every call: knowledge, the
/// classifier's index, the embedding model and the tools.
pub struct Engine {
    pub tenant: PathBuf,
    pub kb: knowledge::KnowledgeBase,
    pub index: intent::IntentIndex,
    pub embedder: embed::Embedder,
    pub tools: Box<dyn tools::Tools>,
    pub config: manager::DialogueConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Knowledge(#[from] knowledge::KnowledgeError),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    #[error(transparent)]
    Tools(#[from] tools::ToolError),
}

impl Engine {
    /// Loads the tenant in `tenant` (knowledge, intents, hours, demo data in `db`) and the
    /// embedding model in `embeddings`.
    pub fn load(tenant: &Path, embeddings: &Path, db: &Path, config: manager::DialogueConfig) -> Result<Self, EngineError> {
        let tools = Box::new(tools::LocalTools::open(tenant, db)?);
        Self::with_tools(tenant, embeddings, tools, config)
    }

    /// As `load`, with the company's own tools (e.g. [`webhook::WebhookTools`]).
    pub fn with_tools(
        tenant: &Path,
        embeddings: &Path,
        tools: Box<dyn tools::Tools>,
        config: manager::DialogueConfig,
    ) -> Result<Self, EngineError> {
        let kb = knowledge::KnowledgeBase::load(tenant)?;
        let embedder = embed::Embedder::load(embeddings)?;
        let index = intent::IntentIndex::build(&kb, &embedder)?;
        Ok(Self { tenant: tenant.to_path_buf(), kb, index, embedder, tools, config })
    }

    pub fn brain(&self) -> manager::Brain<'_> {
        manager::Brain { kb: &self.kb, index: &self.index, embedder: &self.embedder, tools: self.tools.as_ref(), config: &self.config }
    }

    /// Re-reads the knowledge files if any changed on disk (no restart needed). A broken edit
    /// keeps the previous knowledge and reports why.
    pub fn reload_if_changed(&mut self) -> Result<bool, EngineError> {
        if !self.kb.is_stale(&self.tenant) {
            return Ok(false);
        }
        let kb = knowledge::KnowledgeBase::load(&self.tenant)?;
        let index = intent::IntentIndex::build(&kb, &self.embedder)?;
        self.kb = kb;
        self.index = index;
        Ok(true)
    }
}
