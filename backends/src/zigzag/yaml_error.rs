//! The diagnostic shared by qc's readers of ZigZag's YAML files (workload, accelerator, mapping):
//! a code, the item and key at fault, a label on the offending text and a hint
//! ([`YamlError`]), and the helpers that build it from `serde-saphyr` locations and errors.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// What a [`YamlError`] is about: one enum per file kind, each variant with its own code.
pub trait YamlErrorKind: Copy + fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// What a valid file is, for messages: `ZigZag workload`.
    const FILE_KIND: &'static str;

    /// The full diagnostic code (`qc::accelerator::port`).
    fn code(self) -> &'static str;

    /// Whether this kind is a warning: the file is used, but something in it is likely wrong.
    fn is_warning(self) -> bool {
        false
    }
}

/// A ZigZag YAML file that qc cannot read: a diagnostic with a code (from the kind `K`), the item
/// (layer, memory, port, mapping entry) and key at fault, a label on the offending text and a
/// hint.
#[derive(Debug)]
pub struct YamlError<K> {
    /// What is wrong.
    pub kind: K,
    detail: Box<Detail>,
}

#[derive(Debug)]
struct Detail {
    file: String,
    item: Option<String>,
    key: Option<String>,
    message: String,
    help: String,
    src: NamedSource<String>,
    span: Option<SourceSpan>,
}

impl<K> YamlError<K> {
    /// The file, as given to the reader.
    pub fn file(&self) -> &str {
        &self.detail.file
    }

    /// The item at fault (`layer 3 (conv1)`, `memory sram_2MB`, `memory sram_2MB, port r_port_1`,
    /// `entry 2 (Add)`), if the error is in one.
    pub fn item(&self) -> Option<&str> {
        self.detail.item.as_deref()
    }

    /// The key at fault (`allocation`), if known.
    pub fn key(&self) -> Option<&str> {
        self.detail.key.as_deref()
    }

    /// What is wrong, in a sentence.
    pub fn message(&self) -> &str {
        &self.detail.message
    }

    /// The hint.
    pub fn hint(&self) -> &str {
        &self.detail.help
    }

    /// The byte range of the labelled text in the file, if any.
    pub fn span(&self) -> Option<std::ops::Range<usize>> {
        self.detail.span.map(|s| s.offset()..s.offset() + s.len())
    }

    /// The labelled text itself, if any.
    pub fn labelled_text(&self) -> Option<&str> {
        self.span().and_then(|r| self.detail.src.inner().get(r))
    }
}

impl<K: YamlErrorKind> fmt::Display for YamlError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.detail;
        if self.kind.is_warning() {
            write!(f, "{} `{}`: ", K::FILE_KIND, d.file)?;
        } else {
            write!(f, "`{}` is not a valid {}: ", d.file, K::FILE_KIND)?;
        }
        if let Some(item) = &d.item {
            write!(f, "{item}: ")?;
        }
        if let Some(key) = &d.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&d.message)
    }
}

impl<K: YamlErrorKind> std::error::Error for YamlError<K> {}

impl<K: YamlErrorKind> Diagnostic for YamlError<K> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.detail.help))
    }

    fn severity(&self) -> Option<miette::Severity> {
        self.kind.is_warning().then_some(miette::Severity::Warning)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.detail.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.detail.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(Some(self.detail.message.clone()), span))))
    }
}

/// The text being read and its name, to build [`YamlError`]s.
#[derive(Clone, Copy)]
pub(crate) struct YamlSource<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

impl YamlSource<'_> {
    /// The span of `loc` in the text, at least one byte long, if it has one.
    pub fn span(&self, loc: &Location) -> Option<SourceSpan> {
        let s = loc.span();
        let offset = usize::try_from(s.byte_offset()?).ok()?;
        let len = s.byte_len().and_then(|l| usize::try_from(l).ok()).unwrap_or(0).max(1);
        (offset <= self.text.len()).then(|| SourceSpan::from((offset, len.min(self.text.len() - offset))))
    }

    /// An error of `kind` about `item` (if any), `key` (empty: none), labelled at `loc`.
    pub fn error<K>(
        &self,
        kind: K,
        item: Option<&str>,
        key: &str,
        loc: Option<&Location>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> YamlError<K> {
        YamlError {
            kind,
            detail: Box::new(Detail {
                file: self.file.to_string(),
                item: item.map(str::to_string),
                key: (!key.is_empty()).then(|| key.to_string()),
                message: message.into(),
                help: help.into(),
                src: NamedSource::new(self.file, self.text.to_string()),
                span: loc.and_then(|l| self.span(l)),
            }),
        }
    }

    /// Deserializes the text as `T`; a YAML or schema error (or an empty document) becomes an
    /// error of kind `schema` with hint `help`.
    pub fn parse<T, K>(
        &self,
        options: serde_saphyr::Options,
        schema: K,
        help: &str,
    ) -> Result<T, YamlError<K>>
    where
        T: for<'de> Deserialize<'de>,
        K: Copy,
    {
        let value: Option<T> = serde_saphyr::from_str_with_options(self.text, options).map_err(|e| {
            use serde_saphyr::MessageFormatter;
            let e = e.without_snippet();
            let message = serde_saphyr::DefaultMessageFormatter.format_message(e).into_owned();
            let loc = e.location();
            self.error(schema, None, "", loc.as_ref(), message, help)
        })?;
        value.ok_or_else(|| self.error(schema, None, "", None, "the document is empty", help))
    }
}

/// A YAML mapping read in the file's order, each key with its location; duplicate keys are kept
/// (with `DuplicateKeyPolicy::LastWins`, `serde-saphyr` passes them all to a map), so that the
/// reader can report them.
pub(crate) struct OrderedMap<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<V>()?;
                    entries.push((k, v));
                }
                Ok(OrderedMap(entries))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

/// Reads a YAML value that is either an integer or a string (kept as written), as for a
/// `temporal_ordering` size (`112` or `"*"`).
#[derive(Debug)]
pub(crate) enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl Visitor<'_> for Vis {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v).map(IntOrStr::Int).map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_string()))
            }
        }
        d.deserialize_any(Vis)
    }
}
