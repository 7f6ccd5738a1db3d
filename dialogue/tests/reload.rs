//! Knowledge files are picked up without a restart; a broken edit keeps the previous knowledge.

use std::path::Path;

use dialogue::manager::{Conversation, DialogueConfig, Input};
use dialogue::Engine;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else if p.extension().is_none_or(|x| x != "sqlite") {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn ask(engine: &Engine, text: &str) -> String {
    Conversation::new(None).handle(Input::Speech { text, language: "en" }, "2026-11-24T10:00:00Z".parse().unwrap(), &engine.brain()).reply
}

#[test]
fn edited_knowledge_is_used_without_a_restart() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tenant = std::env::temp_dir().join(format!("ivr-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tenant);
    copy_dir(&repo.join("tenant/demo"), &tenant);
    let db = tenant.join("demo.sqlite");
    let mut engine = Engine::load(&tenant, &repo.join("models/data/embeddings/all-MiniLM-L6-v2"), &db, DialogueConfig::default()).unwrap();
    assert!(!engine.reload_if_changed().unwrap(), "nothing changed yet");
    assert!(!ask(&engine, "Do you have parking at your stores?").contains("parking"), "no parking answer before the edit");

    // The company adds an entry (a new file, so its modification time is new).
    std::fs::write(
        tenant.join("knowledge/parking.toml"),
        "[[entry]]\nid = \"stores.parking\"\nanswer = \"All three stores have free customer parking.\"\nexamples = [\"Is there parking at the store?\", \"Where can I park?\"]\n",
    )
    .unwrap();
    assert!(engine.reload_if_changed().unwrap());
    assert_eq!(ask(&engine, "Do you have parking at your stores?"), "All three stores have free customer parking.");

    // A broken edit is refused with the file named, and the previous knowledge stays.
    std::fs::write(tenant.join("knowledge/parking.toml"), "[[entry]]\nid = \"broken\"\nanswer = \n").unwrap();
    let err = engine.reload_if_changed().unwrap_err().to_string();
    assert!(err.contains("parking.toml"), "{err}");
    assert_eq!(ask(&engine, "Where can I park?"), "All three stores have free customer parking.");
    let _ = std::fs::remove_dir_all(&tenant);
}
