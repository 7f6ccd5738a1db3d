//! The conversation: one caller's dialogue as a sans-IO state machine.
//!
//! [`Conversation::handle`] takes one caller input (words or a keypad digit) and the current time,
//! and returns what to say and whether to act (transfer, hang up). It reads no clock and does no IO;
//! the knowledge base, classifier and tools come in through [`Brain`], so a whole call can be
//! replayed in a test.
//!
//! Order of decisions for each turn: the escalation rules (an explicit request for a person, anger)
//! win over everything; then a value the bot was waiting for (order number, postcode, keypad PIN);
//! then the classifier, whose low-confidence answers lead to one clarifying question and then an
//! offer of a person.

use crate::embed::Embedder;
use crate::intent::{IntentIndex, Target};
use crate::knowledge::{Action as IntentAction, KnowledgeBase};
use crate::policy::{self, Priority, Sentiment, TransferReason};
use crate::slots;
use crate::tools::{OrderNumber, Postcode, ToolCall, ToolError, Tools, Verification, VerifiedCustomer};

/// Tunable behaviour.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DialogueConfig {
    /// Below this classifier confidence the bot asks instead of answering.
    pub confidence_threshold: f32,
    /// Longest caller turn considered (longer input is cut).
    pub max_input_chars: usize,
    /// Wrong order/postcode/PIN attempts before a person takes over.
    pub max_verification_attempts: u32,
    /// How much the LLM may write; see [`LlmStyle`].
    pub llm_style: LlmStyle,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        Self { confidence_threshold: 0.55, max_input_chars: 1000, max_verification_attempts: 2, llm_style: LlmStyle::Constrained }
    }
}

/// How much of a reply the LLM writes.
///
/// The embedded SmolLM2-135M cannot be trusted with free text: asked to restate "order 41234567,
/// shipped, arrives 14 March" it answered "The phone is a phone."; asked for a handoff note it
/// invented goals. So by default it only chooses the framing of a fixed, grounded sentence under a
/// grammar, and handoff notes are built from the conversation's own facts. A company that points
/// `[llm]` at a bigger model (vLLM, Ollama, llama-server) can let it phrase tool results and write the
/// agent's note freely; the guard still refuses any text that drops a fact or adds a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmStyle {
    Constrained,
    Free,
}

/// What the conversation needs from the rest of the system.
pub struct Brain<'a> {
    pub kb: &'a KnowledgeBase,
    pub index: &'a IntentIndex,
    pub embedder: &'a Embedder,
    pub tools: &'a dyn Tools,
    pub config: &'a DialogueConfig,
}

pub enum Input<'a> {
    /// What the caller said (a transcript), with the language Whisper detected.
    Speech { text: &'a str, language: &'a str },
    /// A keypad digit (0-9, *, #).
    Dtmf(char),
}

/// For the agent who takes over: the call in a few lines.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Handoff {
    /// At most 60 words, for the agent's screen.
    pub screen: String,
    /// At most about 10 seconds, spoken to the caller before the transfer.
    pub spoken: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Transfer { reason: TransferReason, priority: Priority, summary: Handoff },
    Hangup,
}

/// Where a reply's words come from (the grounding guard's sources).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Source {
    Knowledge(String),
    Tool(String),
    Prompt,
}

/// The bot's answer to one input. `reply` is always safe to speak; `llm` may offer to improve it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Turn {
    pub reply: String,
    pub language: String,
    pub source: Source,
    pub action: Option<Action>,
    /// What the classifier made of the words (none for keypad input and waited-for values).
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    /// The text the reply's facts come from (the knowledge answer, or the tool's data), which the
    /// grounding guard checks the reply against.
    #[serde(skip)]
    pub grounds: String,
    /// Optional work for the LLM that may improve on `reply` or on the handoff note (both are safe
    /// on their own). The runner does the IO and passes the LLM's text to [`Turn::apply_llm`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmJob>,
    /// True when the LLM's words replaced the fixed ones (in the reply or the handoff note).
    pub llm_worded: bool,
    /// The bot now waits for digits (order number, postcode, PIN): callers read them slowly, with
    /// pauses, so the call layer waits longer before taking the turn as finished.
    pub expects_digits: bool,
    /// The caller's mood in these words (none for keypad input).
    pub sentiment: Option<Sentiment>,
    /// The bot had no answer for these words: the classifier's best guess was below the
    /// confidence threshold (what the knowledge-gap report collects).
    pub unanswered: bool,
    /// The order this reply is about, once a tool has looked it up: the call records it, so the
    /// caller's next call can be greeted about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matter: Option<String>,
}

impl Turn {
    /// Takes the LLM's answer to this turn's job if the guard accepts it; returns whether it did.
    pub fn apply_llm(&mut self, job: &LlmJob, text: &str) -> bool {
        let Some(text) = accept_llm_reply(job, text) else { return false };
        match job.purpose {
            LlmPurpose::Reply => self.reply = text,
            LlmPurpose::HandoffNote => match &mut self.action {
                Some(Action::Transfer { summary, .. }) => summary.screen = text,
                _ => return false,
            },
        }
        self.llm_worded = true;
        true
    }
}

/// What an LLM job's text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmPurpose {
    /// The words spoken to the caller.
    Reply,
    /// The note on the agent's screen at a transfer.
    HandoffNote,
}

/// A request for the LLM, made by the conversation and carried out by whoever runs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlmJob {
    pub purpose: LlmPurpose,
    pub system: String,
    pub user: String,
    pub max_tokens: usize,
    /// Numbers the answer may state (the grounding guard's sources).
    pub grounds: String,
    /// Longest acceptable answer, in words.
    pub max_words: usize,
    /// A GBNF grammar the answer must follow: a 135M model is weak, so its output is kept tightly
    /// constrained (it chooses among well-formed phrasings that fit the caller's words).
    pub grammar: Option<String>,
    /// Values the answer must contain word for word (order numbers, amounts, dates): a phrasing
    /// that drops a fact is worse than the fixed sentence.
    pub must_mention: Vec<String>,
    /// Fixed words spoken right after the LLM's (a grounded tool sentence the LLM only introduces).
    pub then_say: String,
    /// A sentence the answer must restate: it has to keep most of its content words and its
    /// negation ("is closed" must not become "is open", nor "can" become "cannot").
    pub paraphrase_of: Option<String>,
}

/// The LLM's answer to a job, if it is fit to use: one short line, no markup, every required value
/// and no number its sources do not hold. `None` means: keep the fixed words.
pub fn accept_llm_reply(job: &LlmJob, text: &str) -> Option<String> {
    let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
    let joined;
    let line = if job.then_say.is_empty() {
        line
    } else {
        joined = format!("{line} {}", job.then_say);
        joined.as_str()
    };
    let words = line.split_whitespace().count();
    let bad = line.contains("<|") || line.contains("http") || line.contains('@') || line.contains('#');
    let lower = line.to_lowercase();
    let leaks = ["system prompt", "instruction", "as an ai", "language model"].iter().any(|w| lower.contains(w));
    let complete = job.must_mention.iter().all(|v| lower.contains(&v.to_lowercase()));
    let faithful = job.paraphrase_of.as_deref().is_none_or(|original| restates(line, original));
    (words >= 1
        && words <= job.max_words
        && !bad
        && !leaks
        && complete
        && faithful
        && crate::grounding::ungrounded(line, &[&job.grounds]).is_empty())
    .then(|| line.to_string())
}

/// Whether `text` plausibly says what `original` says: at least 60% of the original's content
/// words are kept, and both are negative or both are not. Cheap and strict; a good paraphrase by a
/// capable model passes, a fluent answer about something else does not.
fn restates(text: &str, original: &str) -> bool {
    fn words(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
    fn negative(words: &[String]) -> bool {
        words.iter().any(|w| matches!(w.as_str(), "not" | "no" | "never" | "cannot" | "closed" | "unable") || w.ends_with("n't"))
    }
    const STOP: &[&str] = &["your", "you", "the", "and", "that", "this", "with", "have", "will", "from", "are", "our", "for", "was", "been", "has"];
    let (got, want) = (words(text), words(original));
    let content: std::collections::BTreeSet<&String> = want.iter().filter(|w| w.len() >= 3 && !STOP.contains(&w.as_str())).collect();
    let kept = content.iter().filter(|w| got.contains(w)).count();
    negative(&got) == negative(&want) && (content.is_empty() || kept * 10 >= content.len() * 6)
}

/// A task waiting for values from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Task {
    OrderStatus,
    Cancel,
    ChangeAddress,
    GiftCard,
    Points,
}

impl Task {
    fn from_tool(name: &str) -> Option<Self> {
        Some(match name {
            "order_status" => Self::OrderStatus,
            "cancel_eligibility" => Self::Cancel,
            "address_change_eligibility" => Self::ChangeAddress,
            "gift_card_balance" => Self::GiftCard,
            "reward_points" => Self::Points,
            _ => return None,
        })
    }
    fn is_about_an_order(self) -> bool {
        matches!(self, Self::OrderStatus | Self::Cancel | Self::ChangeAddress)
    }

    fn goal(self) -> &'static str {
        match self {
            Self::OrderStatus => "order status",
            Self::Cancel => "cancel an order",
            Self::ChangeAddress => "change a delivery address",
            Self::GiftCard => "gift card balance",
            Self::Points => "reward points balance",
        }
    }
    fn needs_verification(self) -> bool {
        matches!(self, Self::GiftCard | Self::Points)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Nothing,
    OrderNumber,
    Postcode,
    Pin,
    /// "Shall I put you through to a colleague?"
    OfferHuman,
    /// A returning caller greeted with "Are you calling about order ...?".
    OpenMatter,
}

/// One caller's conversation.
#[derive(Debug)]
pub struct Conversation {
    caller_id: Option<String>,
    language: String,
    task: Option<Task>,
    waiting: Waiting,
    order: Option<OrderNumber>,
    postcode: Option<Postcode>,
    verified: Option<VerifiedCustomer>,
    keyed: String,
    misses: u32,
    failed_attempts: u32,
    sentiment: Sentiment,
    goal: Option<String>,
    tried: Vec<String>,
    /// The caller's last few turns (for the LLM's handoff note).
    heard: Vec<String>,
    style: LlmStyle,
    ended: bool,
    /// The turn that ended the conversation (a transfer or a goodbye), said again if asked again.
    ending: Option<Turn>,
    /// Calls from the same number in the week before this one.
    earlier_calls: u32,
    /// The order a returning caller's last call this week was about.
    open_order: Option<OrderNumber>,
}

/// The bot's fixed sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    AskOrder,
    AskPostcode,
    AskPin,
    BadOrder,
    NoMatch,
    BadPin,
    Clarify,
    OfferHuman,
    AnythingElse,
    HowCanIHelp,
    Greeting,
    Thanks,
    Goodbye,
    Empty,
    Backend,
}

/// A fixed sentence in the caller's language (the demo tenant speaks English and Chinese).
fn prompt(key: Prompt, language: &str) -> String {
    let zh = language == "zh";
    let s = match key {
        Prompt::AskOrder if zh => "请告诉我您的8位订单号，也可以在键盘上输入，以井号键结束。",
        Prompt::AskOrder => "Please tell me your 8-digit order number, or key it in followed by the hash key.",
        Prompt::AskPostcode if zh => "请告诉我收货地址的邮政编码。",
        Prompt::AskPostcode => "Thank you. Now please tell me the postcode of the delivery address.",
        Prompt::AskPin if zh => "为了核实身份，请在键盘上输入您的4位电话密码，以井号键结束。",
        Prompt::AskPin => "To check it is you, please key in your 4-digit phone PIN, followed by the hash key.",
        Prompt::BadOrder => "That does not sound like an order number: they have 8 digits and start with 4. Could you repeat it?",
        Prompt::NoMatch => "I could not find an order with that number and postcode. Could you give me the order number again?",
        Prompt::BadPin => "That PIN did not match. Please key it in again, followed by the hash key.",
        Prompt::Clarify if zh => "抱歉，我没有听懂。您能换个说法吗？",
        Prompt::Clarify => "Sorry, I'm not sure I understood. Could you say that in other words?",
        Prompt::OfferHuman if zh => "抱歉，我可能帮不上忙。要为您转接人工客服吗？",
        Prompt::OfferHuman => "I'm sorry, I don't think I can help with that. Shall I put you through to a colleague?",
        Prompt::AnythingElse if zh => "好的。还有什么可以帮您？",
        Prompt::AnythingElse => "All right. Is there anything else I can help you with?",
        Prompt::HowCanIHelp if zh => "好的。请问有什么可以帮您？",
        Prompt::HowCanIHelp => "All right. How can I help you today?",
        Prompt::Greeting if zh => "您好！请问有什么可以帮您？",
        Prompt::Greeting => "Hello! How can I help you today?",
        Prompt::Thanks => "You're welcome. Is there anything else I can help you with?",
        Prompt::Goodbye if zh => "感谢您的来电，再见！",
        Prompt::Goodbye => "Thank you for calling Lumen Home Electronics. Goodbye!",
        Prompt::Empty => "Sorry, I didn't catch that. Could you say it again?",
        Prompt::Backend => "I'm sorry, I can't look that up right now.",
    };
    s.to_string()
}

impl Conversation {
    /// A new call; `caller_id` is the calling number, when the network gives it.
    pub fn new(caller_id: Option<&str>) -> Self {
        Self {
            caller_id: caller_id.map(str::to_string),
            language: "en".into(),
            task: None,
            waiting: Waiting::Nothing,
            order: None,
            postcode: None,
            verified: None,
            keyed: String::new(),
            misses: 0,
            failed_attempts: 0,
            sentiment: Sentiment::Neutral,
            goal: None,
            tried: Vec::new(),
            heard: Vec::new(),
            style: LlmStyle::Constrained,
            ended: false,
            ending: None,
            earlier_calls: 0,
            open_order: None,
        }
    }

    /// What the call store knows of this caller: `earlier_calls` calls in the week before this
    /// one (the agent's summary says so, "third call this week": a caller who has to call again
    /// is a caller whose matter is still open), and `last_order`, the order their latest call
    /// this week was about. With an order, the greeting asks "Are you calling about order ...?"
    /// ([`Conversation::open_order`]) and a "yes" is taken as asking about it.
    pub fn set_history(&mut self, earlier_calls: u32, last_order: Option<&str>) {
        self.earlier_calls = earlier_calls;
        self.open_order = last_order.and_then(OrderNumber::parse);
        if self.open_order.is_some() {
            self.waiting = Waiting::OpenMatter;
        }
    }

    /// The order the greeting asks about, if any.
    pub fn open_order(&self) -> Option<&str> {
        self.open_order.as_ref().map(OrderNumber::as_str)
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn say(&self, text: String, source: Source) -> Turn {
        let grounds = text.clone();
        Turn {
            reply: text,
            language: self.language.clone(),
            source,
            action: None,
            intent: None,
            confidence: None,
            grounds,
            llm: None,
            llm_worded: false,
            expects_digits: false,
            sentiment: None,
            unanswered: false,
            matter: None,
        }
    }

    /// A reply whose facts come from `grounds`; if it states a number they do not hold, a safe
    /// answer is spoken instead.
    fn grounded(&self, text: String, source: Source, grounds: String) -> Turn {
        let missing = crate::grounding::ungrounded(&text, &[&grounds]);
        if !missing.is_empty() {
            tracing::warn!(?missing, "reply states numbers its sources do not hold; not spoken");
            return Turn { grounds, ..self.prompt(Prompt::Backend) };
        }
        Turn { grounds, ..self.say(text, source) }
    }

    fn prompt(&self, key: Prompt) -> Turn {
        self.say(prompt(key, &self.language), Source::Prompt)
    }

    /// Handles one caller input.
    pub fn handle(&mut self, input: Input<'_>, now: jiff::Timestamp, brain: &Brain<'_>) -> Turn {
        if self.ended {
            // The call was handed over or closed, but the caller was heard again (the session
            // dropped the answer because they went on talking): the same ending again, its
            // action included, never a goodbye that leaves the call open.
            return self.ending.clone().unwrap_or_else(|| Turn { action: Some(Action::Hangup), ..self.prompt(Prompt::Goodbye) });
        }
        let mut turn = match input {
            Input::Dtmf(d) => self.on_dtmf(d, brain),
            Input::Speech { text, language } => {
                if !language.is_empty() && language != "auto" {
                    self.language = if language.starts_with("zh") { "zh".into() } else { "en".into() };
                }
                let text: String = text.chars().filter(|c| !c.is_control()).take(brain.config.max_input_chars).collect();
                self.style = brain.config.llm_style;
                if self.heard.len() == 6 {
                    self.heard.remove(0);
                }
                self.heard.push(shorten(text.trim(), 200));
                let mut turn = self.on_speech(text.trim(), now, brain);
                turn.sentiment = Some(policy::sentiment(text.trim()));
                turn
            }
        };
        turn.expects_digits = !self.ended && matches!(self.waiting, Waiting::OrderNumber | Waiting::Postcode | Waiting::Pin);
        if self.ended && turn.action.is_some() {
            self.ending = Some(turn.clone());
        }
        turn
    }

    fn on_dtmf(&mut self, d: char, brain: &Brain<'_>) -> Turn {
        match d {
            '0' if self.keyed.is_empty() => self.transfer(TransferReason::CallerRequest),
            '#' => {
                let keyed = std::mem::take(&mut self.keyed);
                self.on_value(&keyed, true, brain)
                    .unwrap_or_else(|| self.prompt(match self.waiting { Waiting::Pin => Prompt::BadPin, _ => Prompt::BadOrder }))
            }
            '*' => {
                self.keyed.clear();
                self.say(String::new(), Source::Prompt)
            }
            d if d.is_ascii_digit() && self.keyed.len() < 16 => {
                self.keyed.push(d);
                self.say(String::new(), Source::Prompt)
            }
            _ => self.say(String::new(), Source::Prompt),
        }
    }

    fn on_speech(&mut self, text: &str, now: jiff::Timestamp, brain: &Brain<'_>) -> Turn {
        if text.is_empty() || !text.chars().any(char::is_alphanumeric) {
            return self.prompt(Prompt::Empty);
        }
        // 1. Rules that must never miss.
        let mood = policy::sentiment(text);
        if mood > self.sentiment {
            self.sentiment = mood;
        }
        if policy::asks_for_human(text) {
            return self.transfer(TransferReason::CallerRequest);
        }
        // The specific problem first: an angry caller with a smashed delivery is a damaged
        // delivery (the agent's queue needs that), and goes first all the same (priority).
        if let Some(reason) = policy::delivery_problem(text) {
            self.goal.get_or_insert_with(|| reason.describe().to_string());
            return self.transfer(reason);
        }
        if mood == Sentiment::Angry {
            return self.transfer(TransferReason::Anger);
        }
        // 2. An answer to a question the bot asked.
        if self.waiting == Waiting::OpenMatter {
            self.waiting = Waiting::Nothing;
            let yes = policy::is_yes(text) && !policy::is_no(text);
            if let (true, Some(order)) = (yes, self.open_order.clone()) {
                // "Yes, is it on its way?": the same order's status (its postcode still asked,
                // as for any caller naming an order).
                self.task = Some(Task::OrderStatus);
                self.goal = Some(Task::OrderStatus.goal().into());
                self.tried.push(format!("asked about order {} from an earlier call", order.as_str()));
                self.order = Some(order);
                self.take_values_from(text);
                return self.advance(brain);
            }
            if policy::is_no(text) && text.split_whitespace().count() <= 3 {
                return self.prompt(Prompt::HowCanIHelp);
            }
            // Anything else is a new request, handled as usual.
        }
        if self.waiting == Waiting::OfferHuman {
            if policy::is_yes(text) && !policy::is_no(text) {
                return self.transfer(TransferReason::LowConfidence);
            }
            self.waiting = Waiting::Nothing;
            if policy::is_no(text) && text.split_whitespace().count() <= 3 {
                self.misses = 0;
                return self.prompt(Prompt::AnythingElse);
            }
        }
        if matches!(self.waiting, Waiting::OrderNumber | Waiting::Postcode) {
            if let Some(turn) = self.on_value(text, false, brain) {
                return turn;
            }
        }
        if self.waiting == Waiting::Pin {
            // The PIN is never taken by voice.
            return self.prompt(Prompt::AskPin);
        }
        // 3. The classifier.
        let classification = match brain.index.classify_text(text, brain.embedder) {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => return self.transfer(TransferReason::StageFailure),
        };
        let unanswered = classification.confidence < brain.config.confidence_threshold;
        let mut turn = if unanswered {
            self.misses += 1;
            self.goal = Some(format!("\"{}\"", shorten(text, 60)));
            self.tried.push("the bot did not understand the question".into());
            if self.misses >= 2 {
                self.waiting = Waiting::OfferHuman;
                self.prompt(Prompt::OfferHuman)
            } else {
                self.prompt(Prompt::Clarify)
            }
        } else {
            self.misses = 0;
            self.act_on(&classification.target, text, now, brain)
        };
        turn.intent = Some(classification.target.id().to_string());
        turn.confidence = Some(classification.confidence);
        turn.unanswered = unanswered;
        turn
    }

    fn act_on(&mut self, target: &Target, text: &str, now: jiff::Timestamp, brain: &Brain<'_>) -> Turn {
        match target {
            Target::Entry(id) => {
                let Some(entry) = brain.kb.entry(id) else { return self.prompt(Prompt::Clarify) };
                self.tried.push(format!("answered from knowledge: {id}"));
                let (answer, lang) = entry.answer_in(&self.language);
                Turn { language: lang.to_string(), ..self.grounded(answer.to_string(), Source::Knowledge(id.clone()), answer.to_string()) }
            }
            Target::Intent(id) => {
                let Some(intent) = brain.kb.intent(id) else { return self.prompt(Prompt::Clarify) };
                match &intent.action {
                    IntentAction::Transfer(reason) => {
                        self.goal.get_or_insert_with(|| id.replace('_', " "));
                        let reason = TransferReason::parse(reason).unwrap_or(TransferReason::CallerRequest);
                        self.transfer(reason)
                    }
                    IntentAction::Tool(name) if name == "open_now" => {
                        self.tried.push("checked opening hours".into());
                        match brain.tools.call(&ToolCall::OpenNow { at: now }) {
                            Ok(r) => self.tool_reply(r, "open_now".into()),
                            Err(_) => self.prompt(Prompt::Backend),
                        }
                    }
                    IntentAction::Tool(name) => match Task::from_tool(name) {
                        Some(task) => {
                            self.task = Some(task);
                            self.goal = Some(task.goal().into());
                            // Values given in the same breath ("where is order 41234567?").
                            self.take_values_from(text);
                            self.advance(brain)
                        }
                        None => self.prompt(Prompt::Clarify),
                    },
                    IntentAction::SmallTalk => {
                        let mut turn = self.prompt(if id == "thanks" { Prompt::Thanks } else { Prompt::Greeting });
                        if self.language == "en" {
                            turn.llm = Some(small_talk_job(text));
                        }
                        turn
                    }
                    IntentAction::Goodbye => {
                        self.ended = true;
                        Turn { action: Some(Action::Hangup), ..self.prompt(Prompt::Goodbye) }
                    }
                }
            }
        }
    }

    fn take_values_from(&mut self, text: &str) {
        for run in slots::digit_runs(text) {
            if self.order.is_none() {
                if let Some(o) = OrderNumber::parse(&run) {
                    self.order = Some(o);
                    continue;
                }
            }
            if self.postcode.is_none() && self.order.is_some() {
                if let Some(p) = Postcode::parse(&run) {
                    self.postcode = Some(p);
                }
            }
        }
    }

    /// A value the bot was waiting for, spoken or keyed. None if the words hold no such value.
    fn on_value(&mut self, text: &str, keyed: bool, brain: &Brain<'_>) -> Option<Turn> {
        match self.waiting {
            Waiting::OrderNumber => {
                let runs = if keyed { vec![text.to_string()] } else { slots::digit_runs(text) };
                match runs.iter().find_map(|r| OrderNumber::parse(r)) {
                    Some(o) => {
                        self.order = Some(o);
                        // A postcode may follow in the same breath.
                        self.postcode = runs.iter().filter(|r| OrderNumber::parse(r).is_none()).find_map(|r| Postcode::parse(r));
                        Some(self.advance(brain))
                    }
                    None if keyed || runs.iter().any(|r| r.len() >= 6) => Some(self.failed(Prompt::BadOrder, brain)),
                    None => None,
                }
            }
            Waiting::Postcode => {
                let runs = if keyed { vec![text.to_string()] } else { slots::digit_runs(text) };
                match runs.iter().find_map(|r| Postcode::parse(r)) {
                    Some(p) => {
                        self.postcode = Some(p);
                        Some(self.advance(brain))
                    }
                    None if keyed || !runs.is_empty() => Some(self.prompt(Prompt::AskPostcode)),
                    None => None,
                }
            }
            Waiting::Pin if keyed => {
                let order = self.order.clone()?;
                match brain.tools.verify_pin(&order, text) {
                    Ok(Some(v)) => {
                        self.verified = Some(v);
                        Some(self.advance(brain))
                    }
                    Ok(None) => Some(self.failed(Prompt::BadPin, brain)),
                    Err(_) => Some(self.prompt(Prompt::Backend)),
                }
            }
            _ => None,
        }
    }

    /// A wrong value: ask again, or after too many attempts hand over.
    fn failed(&mut self, prompt_key: Prompt, brain: &Brain<'_>) -> Turn {
        self.failed_attempts += 1;
        if self.failed_attempts > brain.config.max_verification_attempts {
            self.tried.push("order number, postcode or PIN did not match".into());
            return self.transfer(TransferReason::VerificationFailed);
        }
        self.prompt(prompt_key)
    }

    /// Asks for the next missing value of the current task, or runs its tool.
    fn advance(&mut self, brain: &Brain<'_>) -> Turn {
        let Some(task) = self.task else {
            self.waiting = Waiting::Nothing;
            return self.prompt(Prompt::AnythingElse);
        };
        if task.needs_verification() && self.verified.is_none() {
            if let Some(id) = &self.caller_id {
                if let Ok(Some(v)) = brain.tools.customer_by_caller_id(id) {
                    self.verified = Some(v);
                }
            }
        }
        if task.needs_verification() && self.verified.is_none() {
            // Unknown caller number: the order number names the account, the keypad PIN proves it.
            if self.order.is_none() {
                self.waiting = Waiting::OrderNumber;
                return self.prompt(Prompt::AskOrder);
            }
            self.waiting = Waiting::Pin;
            return self.prompt(Prompt::AskPin);
        }
        let call = match task {
            Task::GiftCard | Task::Points => {
                let customer = self.verified.clone().expect("checked above");
                if task == Task::GiftCard {
                    ToolCall::GiftCardBalance { customer }
                } else {
                    ToolCall::RewardPoints { customer }
                }
            }
            Task::OrderStatus | Task::Cancel | Task::ChangeAddress => {
                let Some(order) = self.order.clone() else {
                    self.waiting = Waiting::OrderNumber;
                    return self.prompt(Prompt::AskOrder);
                };
                let Some(postcode) = self.postcode.clone() else {
                    self.waiting = Waiting::Postcode;
                    return self.prompt(Prompt::AskPostcode);
                };
                match task {
                    Task::OrderStatus => ToolCall::OrderStatus { order, postcode },
                    Task::Cancel => ToolCall::CancelEligibility { order, postcode },
                    _ => ToolCall::AddressChangeEligibility { order, postcode },
                }
            }
        };
        let tool = serde_json::to_value(&call).ok().and_then(|v| v["tool"].as_str().map(str::to_string)).unwrap_or_default();
        match brain.tools.call(&call) {
            Ok(result) => {
                self.waiting = Waiting::Nothing;
                self.task = None;
                self.goal = None;
                self.tried.push(format!("{tool}: {}", result.say));
                let eligible = result.data["eligible"] == true;
                let mut turn = self.tool_reply(result, tool);
                turn.matter = self.order.as_ref().filter(|_| task.is_about_an_order()).map(|o| o.as_str().to_string());
                if eligible {
                    turn.action = Some(self.transfer(TransferReason::NeedsAgentAction).action.expect("transfer"));
                }
                turn
            }
            Err(ToolError::NoSuchOrder(_) | ToolError::PostcodeMismatch(_)) => {
                self.order = None;
                self.postcode = None;
                self.waiting = Waiting::OrderNumber;
                self.failed(Prompt::NoMatch, brain)
            }
            Err(_) => self.transfer(TransferReason::StageFailure),
        }
    }

    /// A tool's sentence, guarded, with a job for the LLM to word it (English only: the LLM's
    /// phrasings are English).
    fn tool_reply(&self, result: crate::tools::ToolResult, tool: String) -> Turn {
        let mut turn = self.grounded(result.say.clone(), Source::Tool(tool), result.data.to_string());
        // Only a sentence the guard passed is offered to the LLM, and then it is a source too.
        if self.language == "en" && turn.reply == result.say {
            let grounds = format!("{} {}", result.say, result.data);
            turn.llm = Some(tool_phrasing_job(&result.say, self.heard.last().map_or("", String::as_str), &grounds, self.style));
        }
        turn
    }

    /// Hands the call to a person, with a summary for the agent and words for the caller.
    fn transfer(&mut self, reason: TransferReason) -> Turn {
        self.ended = true;
        let priority = if matches!(reason, TransferReason::Anger) || self.sentiment == Sentiment::Angry {
            Priority::High
        } else {
            Priority::Normal
        };
        let summary = self.handoff(reason);
        let mut turn =
            Turn { action: Some(Action::Transfer { reason, priority, summary: summary.clone() }), ..self.say(summary.spoken, Source::Prompt) };
        if self.style == LlmStyle::Free {
            turn.llm = Some(self.handoff_job(&summary.screen));
        }
        turn
    }

    /// The agent's note written by a capable LLM from the same facts as the fixed note, which it
    /// must keep (order number, customer).
    fn handoff_job(&self, screen: &str) -> LlmJob {
        let heard = self.heard.join(" / ");
        let mut must_mention: Vec<String> = self.order.iter().map(|o| o.as_str().to_string()).collect();
        must_mention.extend(self.verified.iter().map(|v| v.id.clone()));
        LlmJob {
            purpose: LlmPurpose::HandoffNote,
            system: "Write the note a support agent reads when taking over a phone call: the caller's goal, what was tried, \
                     key data (name, order number, verified or not), the caller's mood and the suggested next step. \
                     Plain prose, at most 60 words, facts only from the text given."
                .into(),
            user: format!("Facts: {screen}\nCaller said: {heard}"),
            max_tokens: 100,
            grounds: format!("{screen} {heard}"),
            max_words: 60,
            grammar: None,
            must_mention,
            then_say: String::new(),
            paraphrase_of: None,
        }
    }

    fn handoff(&self, reason: TransferReason) -> Handoff {
        fn ordinal(n: u32) -> String {
            const WORDS: [&str; 9] = ["Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth"];
            match n {
                2..=10 => WORDS[n as usize - 2].to_string(),
                _ => format!("{n}th"),
            }
        }
        let customer = self.verified.as_ref().map(|v| match v.how {
            Verification::CallerId => format!("{} (verified by caller ID)", v.id),
            Verification::KeypadPin => format!("{} (verified by PIN)", v.id),
        });
        let goal = self.goal.clone().unwrap_or_else(|| reason.describe().to_string());
        let mut data = Vec::new();
        if let Some(c) = customer {
            data.push(format!("customer {c}"));
        } else if let Some(id) = &self.caller_id {
            data.push(format!("caller {id}, not verified"));
        }
        if let Some(o) = &self.order {
            data.push(format!("order {}", o.as_str()));
        }
        let tried = self.tried.last().map(|t| shorten(t, 120)).unwrap_or_else(|| "nothing yet".into());
        let next = match reason {
            TransferReason::NeedsAgentAction => "carry out the change on the order",
            TransferReason::DamagedDelivery | TransferReason::MissingItem => "open a delivery claim",
            TransferReason::BillingDispute => "check the payment records",
            TransferReason::VerificationFailed => "verify the caller's identity",
            TransferReason::Anger | TransferReason::Complaint => "listen and resolve the complaint",
            _ => "ask how to help",
        };
        let mood = match self.sentiment {
            Sentiment::Neutral => "calm",
            Sentiment::Frustrated => "frustrated",
            Sentiment::Angry => "upset",
        };
        let repeat = match self.earlier_calls {
            0 => String::new(),
            n => format!("{} call this week. ", ordinal(n + 1)),
        };
        let screen = format!(
            "{repeat}Goal: {goal}. Reason: {}. Tried: {tried}. Data: {}. Caller is {mood}. Next: {next}.",
            reason.describe(),
            if data.is_empty() { "none".to_string() } else { data.join(", ") },
        );
        let spoken = if self.language == "zh" {
            "好的，我现在为您转接同事，并已把您的情况告诉他们。".to_string()
        } else if reason == TransferReason::NeedsAgentAction {
            "A colleague will take it from here; I've passed on your order details.".to_string()
        } else if let Some(task) = self.task {
            format!("I'm putting you through to a colleague now, and I've told them about your {}.", task.goal())
        } else {
            "I'm putting you through to a colleague now, and I've passed on what you told me.".to_string()
        };
        Handoff { screen: limit_words(&screen, 60), spoken }
    }
}

/// The sentences small talk is made of: the LLM picks one of each that fits the caller's words.
const SMALL_TALK_OPENERS: &[&str] = &[
    "Hello!",
    "Hi there!",
    "Good to hear from you!",
    "You're welcome!",
    "My pleasure!",
    "Glad I could help!",
    "I'm doing well, thank you for asking!",
    "Thanks for calling Lumen Home Electronics!",
];
const SMALL_TALK_QUESTIONS: &[&str] = &["How can I help you today?", "What can I do for you?", "Is there anything else I can help you with?"];

/// How the LLM may introduce a tool's answer (constrained style).
const OPENERS: &[&str] =
    &["I've checked that for you.", "Thanks for waiting.", "Here is what I found.", "Let me tell you what I see.", "Thank you, I have it here."];

/// Every fixed sentence the bot may say, as (language, text), so their audio can be rendered once
/// at start-up: prompts, openings, handoff words and knowledge answers.
pub fn fixed_texts(kb: &KnowledgeBase) -> Vec<(String, String)> {
    use Prompt::*;
    let mut out = Vec::new();
    for language in ["en", "zh"] {
        for key in [AskOrder, AskPostcode, AskPin, BadOrder, NoMatch, BadPin, Clarify, OfferHuman, AnythingElse, Greeting, Thanks, Goodbye, Empty, Backend] {
            out.push((language.to_string(), prompt(key, language)));
        }
    }
    out.extend(OPENERS.iter().chain(SMALL_TALK_OPENERS).chain(SMALL_TALK_QUESTIONS).map(|o| ("en".to_string(), o.to_string())));
    let mut conv = Conversation::new(None);
    for task in [None, Some(Task::OrderStatus), Some(Task::Cancel), Some(Task::ChangeAddress), Some(Task::GiftCard), Some(Task::Points)] {
        conv.task = task;
        out.push(("en".into(), conv.handoff(TransferReason::CallerRequest).spoken));
    }
    out.push(("en".into(), conv.handoff(TransferReason::NeedsAgentAction).spoken));
    conv.language = "zh".into();
    out.push(("zh".into(), conv.handoff(TransferReason::CallerRequest).spoken));
    for e in &kb.entries {
        out.push(("en".into(), e.answer.clone()));
        for (language, t) in &e.translations {
            out.extend(t.answer.iter().map(|a| (language.clone(), a.clone())));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Words for a tool's result. Constrained (the embedded 135M model): the LLM only picks an opening
/// fitting the caller's words, and the tool's sentence follows verbatim, so it costs a handful of
/// tokens and cannot change a fact. Free (a bigger model): it phrases the facts itself, and the guard
/// refuses any wording that drops one of the sentence's numbers or adds one.
fn tool_phrasing_job(say: &str, caller_said: &str, grounds: &str, style: LlmStyle) -> LlmJob {
    let numbers: Vec<String> = say
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ':', '!', '?']))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    let base = LlmJob {
        purpose: LlmPurpose::Reply,
        system: String::new(),
        user: String::new(),
        max_tokens: 12,
        grounds: grounds.to_string(),
        max_words: say.split_whitespace().count() + 12,
        grammar: None,
        must_mention: numbers,
        then_say: String::new(),
        paraphrase_of: None,
    };
    match style {
        LlmStyle::Constrained => LlmJob {
            system: "You are a friendly phone assistant. Choose how to introduce the answer to the caller.".into(),
            user: shorten(caller_said, 200),
            grammar: Some(format!("root ::= {}", OPENERS.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(" | "))),
            then_say: say.to_string(),
            ..base
        },
        LlmStyle::Free => LlmJob {
            system: "You are the phone assistant of an electronics shop. Tell the caller the facts below in one or two short, \
                     friendly sentences. Keep every number, date and name exactly as given; add nothing."
                .into(),
            user: format!("Caller said: {}\nFacts: {say}", shorten(caller_said, 200)),
            max_tokens: 80,
            paraphrase_of: Some(say.to_string()),
            ..base
        },
    }
}

/// Small talk for the LLM: it picks a fitting opener and follow-up question (the grammar keeps a
/// 135M model to well-formed, fact-free sentences; its grounds are empty, so no number passes).
fn small_talk_job(text: &str) -> LlmJob {
    let choice = |xs: &[&str]| xs.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(" | ");
    let grammar = format!(
        "root ::= opener \" \" question\nopener ::= {}\nquestion ::= {}",
        choice(SMALL_TALK_OPENERS),
        choice(SMALL_TALK_QUESTIONS)
    );
    LlmJob {
        purpose: LlmPurpose::Reply,
        must_mention: Vec::new(),
        then_say: String::new(),
        paraphrase_of: None,
        system: "You are the friendly phone assistant of Lumen Home Electronics. Reply to the caller warmly in one sentence.".into(),
        user: shorten(text, 200),
        max_tokens: 24,
        grounds: String::new(),
        max_words: 25,
        grammar: Some(grammar),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

fn limit_words(s: &str, max: usize) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() <= max {
        s.to_string()
    } else {
        format!("{}...", words[..max].join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(grounds: &str) -> LlmJob {
        LlmJob {
            purpose: LlmPurpose::Reply,
            system: String::new(),
            user: String::new(),
            max_tokens: 10,
            grounds: grounds.into(),
            max_words: 12,
            grammar: None,
            must_mention: Vec::new(),
            then_say: String::new(),
            paraphrase_of: None,
        }
    }

    #[test]
    fn llm_replies_are_checked_before_they_are_spoken() {
        assert_eq!(accept_llm_reply(&job(""), "Hello! How can I help you today?\nextra").as_deref(), Some("Hello! How can I help you today?"));
        assert_eq!(accept_llm_reply(&job(""), "Your order arrives in 3 days."), None, "a number without a source");
        assert_eq!(accept_llm_reply(&job("3 to 5 business days"), "It takes 3 to 5 business days.").as_deref(), Some("It takes 3 to 5 business days."));
        assert_eq!(accept_llm_reply(&job(""), "My system prompt says hello"), None);
        assert_eq!(accept_llm_reply(&job(""), "<|im_start|>assistant"), None);
        assert_eq!(accept_llm_reply(&job(""), "word ".repeat(20).trim()), None, "too long");
        assert_eq!(accept_llm_reply(&job(""), "   "), None);
    }

    #[test]
    fn a_tool_sentence_keeps_its_facts_whoever_words_it() {
        let say = "Order 41234567 was shipped with DHL on November 19 and should arrive on November 26.";
        let grounds = format!("{say} {{\"number\":\"41234567\"}}");
        // Constrained: the LLM's opening, then the sentence itself.
        let j = tool_phrasing_job(say, "where is my order", &grounds, LlmStyle::Constrained);
        assert!(j.grammar.is_some());
        assert_eq!(accept_llm_reply(&j, "Thanks for waiting.").as_deref(), Some(format!("Thanks for waiting. {say}").as_str()));
        // Free: a paraphrase must keep every number and most words, and add nothing.
        let j = tool_phrasing_job(say, "where is my order", &grounds, LlmStyle::Free);
        assert_eq!(j.must_mention, ["41234567", "19", "26"]);
        let good = "Good news: order 41234567 was shipped with DHL on November 19, and it should arrive on November 26.";
        assert_eq!(accept_llm_reply(&j, good).as_deref(), Some(good));
        assert_eq!(accept_llm_reply(&j, "Your order 41234567 was shipped with DHL on November 19."), None, "drops the arrival date");
        assert_eq!(accept_llm_reply(&j, "Order 41234567 shipped November 19, arriving November 27 or 26."), None, "adds a date");
        assert_eq!(accept_llm_reply(&j, "I'm sorry for your loss 41234567 19 26."), None, "says something else");
        let closed = "The hotline is closed right now. Our stores are closed at the moment.";
        let j = tool_phrasing_job(closed, "are you open", closed, LlmStyle::Free);
        assert!(accept_llm_reply(&j, "Sorry, our hotline and our stores are closed at the moment, right now.").is_some());
        assert_eq!(accept_llm_reply(&j, "Yes, the hotline and stores are open right now at the moment."), None, "flips the answer");
        assert_eq!(accept_llm_reply(&j, "I'm sorry for your loss, but I'm unable to access your location."), None);
    }

    #[test]
    fn the_llm_note_replaces_the_fixed_one_only_on_a_transfer() {
        let job = LlmJob { purpose: LlmPurpose::HandoffNote, max_words: 60, must_mention: vec!["41234567".into()], grounds: "order 41234567".into(), ..job("") };
        let mut conv = Conversation::new(None);
        conv.order = OrderNumber::parse("41234567");
        let mut turn = conv.transfer(TransferReason::DamagedDelivery);
        let fixed = turn.clone();
        assert!(!turn.apply_llm(&job, "Caller wants help."), "the order number is missing");
        assert!(turn.apply_llm(&job, "Order 41234567 arrived damaged; caller is calm; open a claim."));
        let (Some(Action::Transfer { summary, .. }), Some(Action::Transfer { summary: old, .. })) = (&turn.action, &fixed.action) else { panic!() };
        assert_eq!(summary.screen, "Order 41234567 arrived damaged; caller is calm; open a claim.");
        assert_eq!(summary.spoken, old.spoken);
        assert!(turn.llm_worded);
        let mut answer = conv.say("Hello".into(), Source::Prompt);
        assert!(!answer.apply_llm(&job, "Order 41234567 arrived damaged."), "no transfer, no note");
    }
}
