//! Bounded enumerations with exactly one spelling each.
//!
//! Every value a metric label, a span attribute, a database column or a wire field may carry is one of these
//! enums; [`Label::as_str`] is THE spelling everywhere, [`Label::ALL`] the whole set (metrics initialise
//! every series from it, the contract test compares it with docs/observability.md).

use std::fmt;

/// A closed set of values with one spelling each.
pub trait Label: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The spelling used on the wire, in the database, in metric labels and span attributes.
    fn as_str(self) -> &'static str;
    /// The value spelled `s`, if any.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
    /// Every spelling, in declaration order.
    fn spellings() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

/// An unknown spelling for a [`Label`] type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownLabel {
    pub kind: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownLabel {}

/// Declares a [`Label`] enum: `as_str`, `Display`, `FromStr`, serde as the spelling, and `ALL`.
#[macro_export]
macro_rules! label_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $spelling:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::label::Label for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $spelling),+
                }
            }
        }

        impl $name {
            /// The one spelling of this value.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::label::Label>::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::label::UnknownLabel;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::label::Label>::parse(s)
                    .ok_or_else(|| $crate::label::UnknownLabel { kind: stringify!($name), value: s.to_owned() })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
