//! Pipelines as text: parsing (pest) and printing back.
//!
//! `infer-shapes,fold-constants{quant=true},fixpoint(eliminate-dead,fold-constants){max=20}`
//! is a list of passes, each with optional `{key=value}` options, and `fixpoint(...)` groups
//! that repeat their items until nothing changes or `max` rounds have run. Printing gives the
//! canonical spelling, and parsing that gives the same pipeline back. The grammar is in
//! `pipeline.pest` and explained in `spec/passes.md`.

use std::fmt;

use pest::Parser;

/// The default round cap of a `fixpoint(...)` group without `{max=N}`.
pub const DEFAULT_FIXPOINT_MAX: u32 = 10;

/// One item of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Pass { name: String, options: Vec<(String, String)> },
    Fixpoint { items: Vec<Item>, max: u32 },
}

/// A parsed pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Pipeline {
    pub items: Vec<Item>,
}

#[derive(pest_derive::Parser)]
#[grammar = "src/pipeline.pest"]
struct PipelineParser;

/// A pipeline that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum PipelineError {
    #[error("cannot parse the pipeline: {message}")]
    #[diagnostic(
        code(qc::pipeline::syntax),
        help(
            "a pipeline is `pass,pass{{key=value}},fixpoint(pass,pass){{max=N}}`; pass names are kebab-case"
        )
    )]
    Syntax {
        message: String,
        #[source_code]
        text: String,
        #[label("here")]
        at: miette::SourceSpan,
    },

    #[error("option `{option}` of fixpoint(...) is not known")]
    #[diagnostic(code(qc::pipeline::fixpoint_option), help("fixpoint groups take only `max=N`, N >= 1"))]
    FixpointOption {
        option: String,
        #[source_code]
        text: String,
        #[label("this option")]
        at: miette::SourceSpan,
    },
}

impl Pipeline {
    /// Parses pipeline text.
    pub fn parse(text: &str) -> Result<Pipeline, PipelineError> {
        let mut pairs = PipelineParser::parse(Rule::pipeline, text).map_err(|e| {
            let (start, end) = match e.location {
                pest::error::InputLocation::Pos(p) => (p, p),
                pest::error::InputLocation::Span((s, e)) => (s, e),
            };
            PipelineError::Syntax {
                message: e.variant.message().into_owned(),
                text: text.to_string(),
                at: (start, end.saturating_sub(start).max(1).min(text.len().saturating_sub(start))).into(),
            }
        })?;
        let root = pairs.next().map(|p| p.into_inner()).into_iter().flatten();
        let mut items = Vec::new();
        for p in root {
            if p.as_rule() == Rule::item {
                items.push(item(p, text)?);
            }
        }
        Ok(Pipeline { items })
    }

    /// Names of every pass in the pipeline, depth first, with repeats.
    pub fn pass_names(&self) -> Vec<&str> {
        fn walk<'a>(items: &'a [Item], out: &mut Vec<&'a str>) {
            for i in items {
                match i {
                    Item::Pass { name, .. } => out.push(name),
                    Item::Fixpoint { items, .. } => walk(items, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut out);
        out
    }
}

fn item(p: pest::iterators::Pair<'_, Rule>, text: &str) -> Result<Item, PipelineError> {
    let inner = p.into_inner().next().expect("grammar: item has one child");
    match inner.as_rule() {
        Rule::pass => {
            let mut parts = inner.into_inner();
            let name = parts.next().map(|n| n.as_str().to_string()).unwrap_or_default();
            let options = parts.next().map(options).unwrap_or_default();
            Ok(Item::Pass { name, options })
        }
        _ => {
            let mut items = Vec::new();
            let mut max = DEFAULT_FIXPOINT_MAX;
            for part in inner.into_inner() {
                match part.as_rule() {
                    Rule::item => items.push(item(part, text)?),
                    _ => {
                        for opt in part.into_inner() {
                            let span = opt.as_span();
                            let mut kv = opt.into_inner();
                            let key = kv.next().map(|k| k.as_str()).unwrap_or("");
                            let value = kv.next().map(|v| v.as_str()).unwrap_or("");
                            match (key, value.parse::<u32>()) {
                                ("max", Ok(n)) if n >= 1 => max = n,
                                _ => {
                                    return Err(PipelineError::FixpointOption {
                                        option: format!("{key}={value}"),
                                        text: text.to_string(),
                                        at: (span.start(), span.end() - span.start()).into(),
                                    });
                                }
                            }
                        }
                    }
                }
            }
            Ok(Item::Fixpoint { items, max })
        }
    }
}

fn options(p: pest::iterators::Pair<'_, Rule>) -> Vec<(String, String)> {
    p.into_inner()
        .map(|opt| {
            let mut kv = opt.into_inner();
            let k = kv.next().map(|k| k.as_str().to_string()).unwrap_or_default();
            let v = kv.next().map(|v| v.as_str().to_string()).unwrap_or_default();
            (k, v)
        })
        .collect()
}

fn write_options(f: &mut fmt::Formatter<'_>, options: &[(String, String)]) -> fmt::Result {
    if options.is_empty() {
        return Ok(());
    }
    f.write_str("{")?;
    for (i, (k, v)) in options.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{k}={v}")?;
    }
    f.write_str("}")
}

fn write_items(f: &mut fmt::Formatter<'_>, items: &[Item]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Pass { name, options } => {
                f.write_str(name)?;
                write_options(f, options)
            }
            Item::Fixpoint { items, max } => {
                f.write_str("fixpoint(")?;
                write_items(f, items)?;
                write!(f, "){{max={max}}}")
            }
        }
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_items(f, &self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let text = "infer-shapes,fold-constants{quant=true},fixpoint(eliminate-dead,fold-constants){max=20}";
        let p = Pipeline::parse(text).unwrap();
        assert_eq!(p.to_string(), text);
        assert_eq!(Pipeline::parse(&p.to_string()).unwrap(), p);
        assert_eq!(p.pass_names(), ["infer-shapes", "fold-constants", "eliminate-dead", "fold-constants"]);
    }

    #[test]
    fn whitespace_nesting_and_default_cap() {
        let p = Pipeline::parse(" a , fixpoint( b, fixpoint(c) ) ").unwrap();
        assert_eq!(p.to_string(), "a,fixpoint(b,fixpoint(c){max=10}){max=10}");
        assert_eq!(Pipeline::parse("").unwrap(), Pipeline::default());
    }

    #[test]
    fn syntax_errors_point_at_the_text() {
        let e = Pipeline::parse("infer-shapes,,fold").unwrap_err();
        assert!(matches!(&e, PipelineError::Syntax { at, .. } if at.offset() == 13), "{e:?}");
        assert!(matches!(Pipeline::parse("Fold"), Err(PipelineError::Syntax { .. })));
        let e = Pipeline::parse("fixpoint(a){rounds=3}").unwrap_err();
        assert!(matches!(e, PipelineError::FixpointOption { .. }));
        assert!(matches!(Pipeline::parse("fixpoint(a){max=0}"), Err(PipelineError::FixpointOption { .. })));
    }
}
