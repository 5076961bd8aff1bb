//! The model's answer: found in the content however it is wrapped, checked for shape, then checked against
//! the files that were sent and applied in memory. Nothing is written unless every edit holds.
//!
//! ```json
//! {"summary": "...", "confidence": 0.8,
//!  "edits": [{"path": "src/x.rs", "search": "exact old text", "replace": "new text"},
//!            {"path": "src/y.rs", "content": "the whole new file"}]}
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{Completion, Rejection};
use crate::events::RejectReason;
use crate::files::{FileSet, HARD_MAX_FILE_BYTES, check_path, short};
use crate::prompt::has_marker;

/// Edits in one answer, at most.
pub const MAX_EDITS: usize = 25;
/// Content considered when looking for the JSON object.
const MAX_CONTENT_BYTES: usize = 512 * 1024;

/// One edit the model asked for.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Edit {
    Replace { path: String, search: String, replace: String },
    Write { path: String, content: String },
}

impl Edit {
    fn path(&self) -> &str {
        match self {
            Self::Replace { path, .. } | Self::Write { path, .. } => path,
        }
    }
}

/// A well-formed answer.
pub(crate) struct Answer {
    pub summary: String,
    pub confidence: f64,
    pub edits: Vec<Edit>,
}

/// An answer checked against the files: the model declined, or new contents for the files it changes.
pub(crate) enum Checked {
    Declined,
    Edits { summary: String, confidence: f64, edits: usize, writes: Vec<(usize, String)> },
}

fn reject(reason: RejectReason, message: impl Into<String>) -> Rejection {
    Rejection::new(reason, message)
}

/// Checks a completion: parse, shape, then the edits against the files.
pub(crate) fn check(completion: &Completion, files: &FileSet) -> Result<Checked, Rejection> {
    if completion.content.trim().is_empty() {
        let why = if completion.refusal { "you refused to answer" } else { "the answer was empty" };
        return Err(reject(RejectReason::Empty, format!("{why}; answer with the JSON object")));
    }
    let answer = match parse(&completion.content) {
        Ok(a) => a,
        Err(e) if e.reason() == RejectReason::NotJson && completion.finish_reason.as_deref() == Some("length") => {
            return Err(reject(
                RejectReason::Truncated,
                "the answer stopped at the output token limit before the JSON object was complete; give fewer or \
                 smaller edits (search/replace rather than whole files)",
            ));
        }
        Err(e) => return Err(e),
    };
    apply(answer, files)
}

/// The content without a reasoning model's `<think>…</think>` preamble.
fn strip_thinking(content: &str) -> &str {
    match (content.find("<think>"), content.find("</think>")) {
        (Some(open), Some(close)) if open < close => &content[close + "</think>".len()..],
        _ => content,
    }
}

/// The first JSON object in `content` that looks like an answer (code fences and prose around it are fine).
fn find_object(content: &str) -> Option<Map<String, Value>> {
    let mut end = content.len().min(MAX_CONTENT_BYTES);
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    let content = strip_thinking(&content[..end]);
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(content.trim()) {
        return Some(m);
    }
    let mut first = None;
    for (i, _) in content.match_indices('{').take(64) {
        let mut de = serde_json::Deserializer::from_str(&content[i..]);
        if let Ok(Value::Object(m)) = Value::deserialize(&mut de) {
            if m.contains_key("edits") {
                return Some(m);
            }
            first.get_or_insert(m);
        }
    }
    first
}

/// Parses the answer's shape.
pub(crate) fn parse(content: &str) -> Result<Answer, Rejection> {
    let shape = |m: String| reject(RejectReason::WrongShape, m);
    let Some(obj) = find_object(content) else {
        return Err(reject(RejectReason::NotJson, "the answer holds no JSON object"));
    };
    let summary = match obj.get("summary") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.chars().take(1000).collect(),
        Some(_) => return Err(shape("\"summary\" must be a string".into())),
    };
    let confidence = match obj.get("confidence") {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => {
            s.trim().parse::<f64>().map_err(|_| shape("\"confidence\" must be a number".into()))?
        }
        Some(_) => return Err(shape("\"confidence\" must be a number from 0 to 1".into())),
    };
    let confidence = if confidence.is_finite() { confidence.clamp(0.0, 1.0) } else { 0.0 };
    let Some(Value::Array(raw)) = obj.get("edits") else {
        return Err(shape("the object needs an \"edits\" array (empty when nothing can be fixed)".into()));
    };
    if raw.len() > MAX_EDITS {
        return Err(shape(format!("at most {MAX_EDITS} edits, got {}", raw.len())));
    }
    let mut edits = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let Value::Object(e) = e else { return Err(shape(format!("edits[{i}] must be an object"))) };
        let text = |key: &str| -> Result<Option<String>, Rejection> {
            match e.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(shape(format!("edits[{i}].{key} must be a string"))),
            }
        };
        let Some(path) = text("path")? else { return Err(shape(format!("edits[{i}] needs a \"path\""))) };
        let edit = match (text("search")?, text("replace")?, text("content")?) {
            (Some(_), _, Some(_)) => {
                return Err(shape(format!("edits[{i}] has both \"search\" and \"content\"; give one")));
            }
            (Some(search), Some(replace), None) => {
                if search.is_empty() {
                    return Err(shape(format!("edits[{i}].search is empty; copy the text to replace")));
                }
                Edit::Replace { path, search, replace }
            }
            (Some(_), None, None) => return Err(shape(format!("edits[{i}] has \"search\" but no \"replace\""))),
            (None, _, Some(content)) => Edit::Write { path, content },
            (None, _, None) => {
                return Err(shape(format!("edits[{i}] needs \"search\" and \"replace\" (or \"content\")")));
            }
        };
        edits.push(edit);
    }
    Ok(Answer { summary, confidence, edits })
}

/// Where `needle` occurs in `hay`: `None`, once (its offset), or more than once (overlapping counts).
enum Found {
    None,
    Once(usize),
    Many,
}

fn find_once(hay: &str, needle: &str) -> Found {
    let Some(at) = hay.find(needle) else { return Found::None };
    let next = hay[at..].char_indices().nth(1).map(|(i, _)| at + i);
    match next.and_then(|n| hay[n..].find(needle)) {
        Some(_) => Found::Many,
        None => Found::Once(at),
    }
}

/// A hint for a search text that is not in the file.
fn not_found_hint(text: &str, search: &str) -> String {
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapse(search).is_empty() && collapse(text).contains(&collapse(search)) {
        return " (it differs from the file only in whitespace or indentation: copy it exactly)".into();
    }
    if let Some(first) = search.lines().map(str::trim).find(|l| !l.is_empty())
        && let Some(n) = text.lines().position(|l| l.trim() == first)
    {
        return format!(" (its first line matches line {} of the file; the lines after it differ)", n + 1);
    }
    String::new()
}

/// Applies the edits in memory, in order; every one must hold or none is kept.
pub(crate) fn apply(answer: Answer, files: &FileSet) -> Result<Checked, Rejection> {
    if answer.edits.is_empty() {
        return Ok(Checked::Declined);
    }
    let mut current: Vec<Option<String>> = vec![None; files.files.len()];
    let count = answer.edits.len();
    for (i, edit) in answer.edits.into_iter().enumerate() {
        let raw = edit.path();
        let path = check_path(raw)
            .map_err(|why| reject(RejectReason::ForbiddenPath, format!("edits[{i}].path {:?} {why}", short(raw))))?;
        let Some(idx) = files.find(&path) else {
            return Err(reject(
                RejectReason::UnknownFile,
                format!(
                    "edits[{i}].path {:?} is not one of the files shown ({}); no other file can be changed or created",
                    short(raw),
                    files.paths().join(", ")
                ),
            ));
        };
        let file = &files.files[idx];
        let text = current[idx].as_deref().unwrap_or(&file.text);
        let edited_before = current[idx].is_some();
        let new = match edit {
            Edit::Write { content, .. } => {
                if !file.is_complete() {
                    return Err(reject(
                        RejectReason::PartialFile,
                        format!("edits[{i}] rewrites {path}, which you saw only in excerpts; use search/replace"),
                    ));
                }
                if content.contains('\0') {
                    return Err(reject(RejectReason::Binary, format!("edits[{i}].content holds NUL bytes")));
                }
                content
            }
            Edit::Replace { search, replace, .. } => {
                if search.contains('\0') || replace.contains('\0') {
                    return Err(reject(RejectReason::Binary, format!("edits[{i}] holds NUL bytes")));
                }
                if has_marker(&search) {
                    return Err(reject(
                        RejectReason::SearchNotFound,
                        format!("edits[{i}].search quotes an omission line; those lines are not in the file"),
                    ));
                }
                // Models often answer with \n where the file has \r\n.
                let crlf = text.contains("\r\n") && !search.contains("\r\n");
                let variants = [
                    Some((search.clone(), replace.clone())),
                    crlf.then(|| (search.replace('\n', "\r\n"), replace.replace("\r\n", "\n").replace('\n', "\r\n"))),
                ];
                let mut done = None;
                let mut many = false;
                for (s, r) in variants.into_iter().flatten() {
                    match find_once(text, &s) {
                        Found::Once(at) => {
                            done = Some(format!("{}{r}{}", &text[..at], &text[at + s.len()..]));
                            break;
                        }
                        Found::Many => many = true,
                        Found::None => {}
                    }
                }
                match done {
                    Some(new) => new,
                    None if many => {
                        return Err(reject(
                            RejectReason::SearchAmbiguous,
                            format!(
                                "edits[{i}].search occurs more than once in {path}; include more surrounding lines \
                                 so that it occurs exactly once"
                            ),
                        ));
                    }
                    None => {
                        let order = if edited_before { " as changed by the earlier edits" } else { "" };
                        return Err(reject(
                            RejectReason::SearchNotFound,
                            format!(
                                "edits[{i}].search does not occur in {path}{order}{}",
                                not_found_hint(text, &search)
                            ),
                        ));
                    }
                }
            }
        };
        if new.len() > HARD_MAX_FILE_BYTES {
            return Err(reject(RejectReason::TooLarge, format!("edits[{i}] makes {path} larger than 1 MiB")));
        }
        current[idx] = Some(new);
    }
    let writes: Vec<(usize, String)> = current
        .into_iter()
        .enumerate()
        .filter_map(|(idx, new)| new.filter(|n| *n != files.files[idx].text).map(|n| (idx, n)))
        .collect();
    if writes.is_empty() {
        return Err(reject(RejectReason::NoChange, "the edits change nothing"));
    }
    Ok(Checked::Edits { summary: answer.summary, confidence: answer.confidence, edits: count, writes })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::files::{SentFile, Shown};

    fn files() -> FileSet {
        let file = |path: &str, text: &str, shown: Shown| SentFile {
            path: path.into(),
            abs: PathBuf::from(path),
            text: text.into(),
            shown,
            lines: vec![],
        };
        FileSet {
            files: vec![
                file("src/lib.rs", "fn a() {}\nfn b() {}\nfn b() {}\n", Shown::Complete),
                file("win.txt", "one\r\ntwo\r\n", Shown::Complete),
                file("big.rs", "x\ny\n", Shown::Excerpt { segments: vec![(0, 1)], total: 2 }),
            ],
            not_sent: vec![],
        }
    }

    fn run(content: &str) -> Result<Checked, Rejection> {
        let completion = Completion::for_test(content, Some("stop"));
        check(&completion, &files())
    }

    fn reason(content: &str) -> RejectReason {
        match run(content) {
            Err(e) => e.reason(),
            Ok(_) => panic!("accepted: {content}"),
        }
    }

    #[test]
    fn finds_the_object_however_it_is_wrapped() {
        let body = r#"{"summary":"s","confidence":0.7,"edits":[{"path":"src/lib.rs","search":"fn a() {}","replace":"fn a() -> u8 { 1 }"}]}"#;
        for wrapped in [
            body.to_owned(),
            format!("```json\n{body}\n```"),
            format!("Here is the fix:\n{body}\nHope it helps {{:)}}"),
            format!("<think>maybe {{\"x\": 1}}</think>\n{body}"),
            format!("{{\"note\": 1}} then {body}"),
        ] {
            let Ok(Checked::Edits { summary, confidence, edits, writes }) = run(&wrapped) else { panic!("{wrapped}") };
            assert_eq!((summary.as_str(), confidence, edits), ("s", 0.7, 1));
            assert_eq!(writes, vec![(0, "fn a() -> u8 { 1 }\nfn b() {}\nfn b() {}\n".to_owned())]);
        }
    }

    #[test]
    fn rejects_what_is_not_an_answer() {
        assert_eq!(reason("I cannot do that"), RejectReason::NotJson);
        assert_eq!(reason("   "), RejectReason::Empty);
        assert_eq!(reason(r#"{"summary": "x"}"#), RejectReason::WrongShape);
        assert_eq!(reason(r#"{"edits": [{"path": "src/lib.rs"}]}"#), RejectReason::WrongShape);
        assert_eq!(
            reason(r#"{"edits": [{"path": "src/lib.rs", "search": "", "replace": "x"}]}"#),
            RejectReason::WrongShape
        );
        assert_eq!(reason(r#"{"edits": [{"path": 3, "content": "x"}]}"#), RejectReason::WrongShape);
        let truncated = Completion::for_test(r#"{"edits": [{"path": "src/lib.rs", "sear"#, Some("length"));
        assert_eq!(check(&truncated, &files()).err().unwrap().reason(), RejectReason::Truncated);
    }

    #[test]
    fn checks_paths_and_search_texts() {
        let edit = |path: &str, search: &str| {
            format!(r#"{{"edits": [{{"path": {path:?}, "search": {search:?}, "replace": "z"}}]}}"#)
        };
        assert_eq!(reason(&edit("../etc/passwd", "x")), RejectReason::ForbiddenPath);
        assert_eq!(reason(&edit(".github/workflows/ci.yml", "x")), RejectReason::ForbiddenPath);
        assert_eq!(reason(&edit("/abs/src/lib.rs", "x")), RejectReason::ForbiddenPath);
        assert_eq!(reason(&edit("src/new.rs", "x")), RejectReason::UnknownFile);
        assert_eq!(reason(&edit("src/lib.rs", "fn c() {}")), RejectReason::SearchNotFound);
        assert_eq!(reason(&edit("src/lib.rs", "fn b() {}")), RejectReason::SearchAmbiguous);
        assert_eq!(reason(&edit("src/lib.rs", "[sre-agent: lines 1-2 not shown]")), RejectReason::SearchNotFound);
        assert_eq!(reason(r#"{"edits": [{"path": "big.rs", "content": "x"}]}"#), RejectReason::PartialFile);
        assert_eq!(
            reason(r#"{"edits": [{"path": "src/lib.rs", "search": "fn a() {}", "replace": "fn a() {}"}]}"#),
            RejectReason::NoChange
        );
        // Overlapping occurrences are ambiguous too.
        let f = FileSet {
            files: vec![SentFile {
                path: "a".into(),
                abs: "a".into(),
                text: "aaa".into(),
                shown: Shown::Complete,
                lines: vec![],
            }],
            not_sent: vec![],
        };
        let overlapping = parse(r#"{"edits": [{"path": "a", "search": "aa", "replace": "b"}]}"#).unwrap();
        assert_eq!(apply(overlapping, &f).err().unwrap().reason(), RejectReason::SearchAmbiguous);
    }

    #[test]
    fn the_feedback_helps() {
        let Err(e) = run(r#"{"edits": [{"path": "src/lib.rs", "search": "fn a()  {}", "replace": "x"}]}"#) else {
            panic!()
        };
        assert!(e.message().contains("only in whitespace"), "{}", e.message());
        let Err(e) = run(r#"{"edits": [{"path": "src/lib.rs", "search": "fn a() {}\nfn q() {}", "replace": "x"}]}"#)
        else {
            panic!()
        };
        assert!(e.message().contains("first line matches line 1"), "{}", e.message());
        let Err(e) = run(r#"{"edits": [{"path": "nope.rs", "search": "x", "replace": "y"}]}"#) else { panic!() };
        assert!(e.message().contains("src/lib.rs, win.txt, big.rs"), "{}", e.message());
    }

    #[test]
    fn edits_apply_in_order_and_keep_crlf() {
        let content = r#"{"edits": [
            {"path": "src/lib.rs", "search": "fn a() {}\nfn b() {}\nfn b() {}", "replace": "fn a() {}\nfn b() {}"},
            {"path": "src/lib.rs", "search": "fn b() {}", "replace": "fn c() {}"},
            {"path": "win.txt", "search": "one\ntwo", "replace": "uno\ndos"},
            {"path": "big.rs", "search": "x\n", "replace": "w\n"}
        ], "confidence": 7}"#;
        let Ok(Checked::Edits { writes, confidence, edits, .. }) = run(content) else { panic!() };
        assert_eq!((confidence, edits), (1.0, 4));
        assert_eq!(
            writes,
            vec![(0, "fn a() {}\nfn c() {}\n".into()), (1, "uno\r\ndos\r\n".into()), (2, "w\ny\n".into())]
        );
        assert!(matches!(run(r#"{"summary": "cannot", "edits": []}"#), Ok(Checked::Declined)));
    }
}
