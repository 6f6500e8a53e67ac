//! Enums whose variants travel as fixed words (API bodies and queries,
//! stored items, index keys). One spelling per variant generates serde's
//! names (and so the OpenAPI enum), `as_str`, `parse` and `ALL`, so the
//! word a status is written with and the word it is read back from cannot
//! drift apart.

/// `wire_enum! { /// docs
/// pub enum Status { Open = "open", Closed = "closed", } }`
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $word:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        $vis enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The variant spelt exactly `raw`.
            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw)
            }

            /// The variant spelt `raw` in any case (query filters).
            pub fn parse_any_case(raw: &str) -> Option<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(raw))
            }
        }
    };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    wire_enum! {
        /// A test enum.
        enum Light {
            /// Stop.
            Red = "RED",
            Green = "green",
        }
    }

    #[test]
    fn one_spelling_for_serde_str_and_parse() {
        for light in Light::ALL {
            let json = serde_json::to_value(light).unwrap();
            assert_eq!(json, light.as_str());
            assert_eq!(serde_json::from_value::<Light>(json).unwrap(), *light);
            assert_eq!(Light::parse(light.as_str()), Some(*light));
        }
        assert_eq!(Light::parse("red"), None, "exact");
        assert_eq!(Light::parse_any_case("red"), Some(Light::Red));
        assert_eq!(Light::parse_any_case("amber"), None);
        // The OpenAPI document spells them the same (a `literal` fragment
        // here would reach utoipa wrapped, and it would fall back to `Red`).
        let schema = serde_json::to_value(<Light as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::json!(["RED", "green"]),
            "{schema}"
        );
    }
}
