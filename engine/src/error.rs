//! Errors keep their causes: a deploy, control or run error holds the error that made it
//! (`#[source]`), and reporters render the whole chain once, at the edge.
//!
//! - [`Cause`]: a shared, type-erased source, so the errors that hold one stay `Clone` (a run's
//!   events and reports are cloned to every reporter).
//! - [`Message`]: a cause known only by its words (a Docker daemon's answer, a generator's
//!   stderr), for the places where no error value exists.
//! - [`ErrorChain`]: the error and its causes as text, outermost first, each said once: what the
//!   terminal prints and what a run's JSON holds (`{"message": .., "causes": [..]}`).
//! - [`Chain::chain`]: any error rendered as `outer: cause: root cause`.
//!
//! Rule: an error's own `Display` says only its own context; its cause is reached through
//! `source()`. Whoever turns an error into text for a user goes through [`Chain`] or
//! [`ErrorChain`], so no cause is dropped and none is said twice.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A cause behind an error, shared so that its holder stays `Clone`. It says what the error it
/// holds says and has that error's source; [`find`] sees through it to the error itself.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// The error this cause holds.
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// `e` as a [`Cause`].
pub fn cause(e: impl Error + Send + Sync + 'static) -> Cause {
    Cause(Arc::new(e))
}

/// The first error of type `E` in `e`'s chain (`e` itself included), looking inside each
/// [`Cause`]: how a caller asks "was this, at bottom, an `io::Error`?".
pub fn find<'a, E: Error + 'static>(e: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(found) = err
            .downcast_ref::<Cause>()
            .and_then(|c| c.get().downcast_ref::<E>())
        {
            return Some(found);
        }
        at = err.source();
    }
    None
}

/// A cause that exists only as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Message(pub String);

/// An error and its causes as text, outermost first; a cause whose words its outer error already
/// says is left out, so each is said once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorChain {
    /// The outermost error's own words.
    pub message: String,
    /// What caused it, outermost first (empty when it has no cause, and in reports written before
    /// causes were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

impl ErrorChain {
    /// The chain of `e`.
    pub fn of(e: &(dyn Error + '_)) -> Self {
        Self::walk(e.to_string(), e.source())
    }

    fn walk(message: String, mut src: Option<&(dyn Error + 'static)>) -> Self {
        let mut said = message.clone();
        let mut causes = Vec::new();
        while let Some(s) = src {
            let text = s.to_string();
            if !text.is_empty() && !said.contains(&text) {
                said.push_str(&text);
                causes.push(text);
            }
            src = s.source();
        }
        Self { message, causes }
    }

    /// An error with no cause.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// The same chain under one more context (`context: message: causes`).
    pub fn within(self, context: &str) -> Self {
        let mut causes = Vec::with_capacity(self.causes.len() + 1);
        causes.push(self.message);
        causes.extend(self.causes);
        Self {
            message: context.to_owned(),
            causes,
        }
    }

    /// True when the message or a cause contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.message.contains(needle) || self.causes.iter().any(|c| c.contains(needle))
    }
}

impl fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for c in &self.causes {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

/// Any error as one line with its causes (`outer: cause: root cause`), each said once.
pub trait Chain {
    /// The error and its causes, as [`ErrorChain`] renders them.
    fn chain(&self) -> String;
}

impl<E: Error + ?Sized> Chain for E {
    fn chain(&self) -> String {
        ErrorChain::walk(self.to_string(), self.source()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to start node-2")]
    struct Outer {
        #[source]
        source: Cause,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("spawn /bin/devnode: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn causes_are_kept_outermost_first_and_each_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Outer {
            source: cause(Repeats { source: io }),
        };
        let chain = ErrorChain::of(&e);
        assert_eq!(chain.message, "failed to start node-2");
        // the inner error already says its io cause: it is not repeated
        assert_eq!(chain.causes, vec!["spawn /bin/devnode: no such file"]);
        assert_eq!(
            chain.to_string(),
            "failed to start node-2: spawn /bin/devnode: no such file"
        );
        assert_eq!(e.chain(), chain.to_string());
        assert!(chain.contains("no such file") && !chain.contains("refused"));
        let io = find::<std::io::Error>(&e).expect("the io error is in the chain");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(find::<std::fmt::Error>(&e).is_none());
    }

    #[test]
    fn json_holds_the_causes_and_old_reports_still_load() {
        let chain = ErrorChain::message("teardown: 1 container left").within("run abc");
        let json = serde_json::to_value(&chain).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"message": "run abc", "causes": ["teardown: 1 container left"]})
        );
        let old: ErrorChain = serde_json::from_str(r#"{"message":"whole text"}"#).unwrap();
        assert_eq!(old, ErrorChain::message("whole text"));
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"message":"whole text"}"#
        );
    }
}
