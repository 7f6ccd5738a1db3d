//! `ivr ask`: one question to the dialogue engine.

use std::process::ExitCode;
use std::time::Instant;

use ivr_models::ModelDir;

use crate::config::Config;
use crate::load::*;

pub(crate) fn ask(models: &ModelDir, cfg: &Config, text: &str, caller: Option<&str>, language: &str, json: bool) -> anyhow::Result<ExitCode> {
    let engine = load_engine(models, cfg)?;
    let mut conversation = dialogue::manager::Conversation::new(caller);
    let started = Instant::now();
    let turn = conversation.handle(dialogue::manager::Input::Speech { text, language }, jiff_now(), &engine.brain());
    print_turn(&turn, started.elapsed().as_secs_f64() * 1000.0, json);
    Ok(ExitCode::SUCCESS)
}
