//! Piper text-to-speech: rates, streaming, and whether Whisper understands what it says.

mod common;
use common::*;
use voice_pipeline::tts::Voices;

const SENTENCES: [&str; 20] = [
    "Thank you for calling, how can I help you today?",
    "Standard delivery takes three to five business days.",
    "Express delivery costs nine euros and ninety cents.",
    "You can return any item within thirty days of delivery.",
    "Our stores are open every day from ten in the morning.",
    "The hotline is closed on Sunday and on public holidays.",
    "Please tell me your order number.",
    "Now please give me the postcode of the delivery address.",
    "Your order has shipped and is on its way.",
    "Refunds go back to the original payment method.",
    "I am putting you through to a colleague now.",
    "Please hold the power and volume buttons for five seconds.",
    "Restart the router first, then reset the hub.",
    "All products have a two year warranty.",
    "Repairs take about ten business days.",
    "Gift cards are refunded as a new gift card.",
    "Would you like a callback tomorrow morning?",
    "I did not understand that, could you say it again?",
    "Is there anything else I can help you with?",
    "Goodbye and have a nice day.",
];

fn voices() -> Voices {
    let models = models();
    voice_pipeline::init_runtime(&models).expect("runtime");
    Voices::load(vec![Voices::default_spec(&models)]).expect("voice loads")
}

#[test]
fn say_then_transcribe_recovers_at_least_95_percent_of_words() {
    // Through the command line, as a user would: `ivr say` each sentence to a WAV file, then one
    // `ivr transcribe` over all of them.
    let dir = tempdir("say-transcribe");
    let mut files = Vec::new();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let wav = dir.join(format!("s{i:02}.wav"));
        ivr_ok(&["say", sentence, "-o", wav.to_str().unwrap(), "--rate", "16000"]);
        files.push(wav.to_string_lossy().into_owned());
    }
    let mut args = vec!["transcribe", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = ivr_ok(&args);
    let (mut errors, mut words) = (0, 0);
    for (sentence, line) in SENTENCES.iter().zip(out.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap();
        let (e, n) = voice_pipeline::wer::score(sentence, text);
        if e > 0 {
            eprintln!("{e}/{n}: {sentence:?} -> {text:?}");
        }
        errors += e;
        words += n;
    }
    assert_eq!(out.lines().count(), SENTENCES.len());
    let recovered = 1.0 - errors as f64 / words as f64;
    eprintln!("recovered {:.1}% of {words} words", recovered * 100.0);
    assert!(recovered >= 0.95, "recovered only {:.1}%", recovered * 100.0);
}

#[test]
fn say_writes_the_requested_rate_as_mono_wav() {
    let dir = tempdir("say-rates");
    for rate in [8000u32, 16000, 48000] {
        let out = dir.join(format!("r{rate}.wav"));
        ivr_ok(&["say", "Your order has shipped.", "-o", out.to_str().unwrap(), "--rate", &rate.to_string()]);
        let r = hound::WavReader::open(&out).unwrap();
        assert_eq!(r.spec().sample_rate, rate);
        assert_eq!(r.spec().channels, 1);
        let secs = r.duration() as f64 / rate as f64;
        assert!((0.8..4.0).contains(&secs), "{rate} Hz: {secs} s");
    }
}

#[test]
fn streaming_yields_each_sentence_before_the_next_is_synthesised() {
    let voices = voices();
    let voice = voices.for_language("en");
    let text = "Standard delivery takes three to five business days. It is free for orders over fifty euros. Express costs extra.";
    let mut stream = voice.stream(text, 8000).unwrap();
    let first = stream.next().unwrap().unwrap();
    let rest: Vec<_> = stream.map(|c| c.unwrap()).collect();
    assert_eq!(rest.len(), 2, "three sentences, three chunks");
    let total: usize = first.samples.len() + rest.iter().map(|c| c.samples.len()).sum::<usize>();
    assert!(first.samples.len() * 2 < total, "the first chunk is one sentence, not the whole text");
    assert_eq!(first.rate, 8000);
}

#[test]
fn an_unknown_language_falls_back_to_the_default_voice_and_a_voices_file_maps_languages() {
    let dir = tempdir("voices");
    let model = models().piper_voices().join("en_US-joe-medium.onnx");
    let file = dir.join("voices.toml");
    std::fs::write(
        &file,
        format!("[[voice]]\nname = \"joe\"\nlanguage = \"en\"\nmodel = {:?}\n\n[[voice]]\nname = \"joe-slow\"\nlanguage = \"de\"\nmodel = {:?}\nlength_scale = 1.5\n", model, model),
    )
    .unwrap();
    models();
    voice_pipeline::init_runtime(&models()).unwrap();
    let voices = Voices::load(Voices::read_file(&file).unwrap()).unwrap();
    assert_eq!(voices.for_language("de-DE").spec().name, "joe-slow");
    assert_eq!(voices.for_language("fr").spec().name, "joe");
    let normal = voices.for_language("en").synthesize("One two three four five.", 16000).unwrap();
    let slow = voices.for_language("de").synthesize("One two three four five.", 16000).unwrap();
    assert!(slow.samples.len() as f64 > normal.samples.len() as f64 * 1.3, "length_scale applies");
}
