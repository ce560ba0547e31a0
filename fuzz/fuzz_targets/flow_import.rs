//! Flows sent to the API (an import as TOML or JSON, or one flow's JSON as drafts carry it): parsed,
//! checked and composed, or refused with problems.
#![no_main]

use leannodes_config::FlowFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match selector % 3 {
        0 | 1 => {
            let format = if selector % 3 == 0 { FlowFormat::Json } else { FlowFormat::Toml };
            match leannodes_config::parse_flows(text, format) {
                Ok(specs) => {
                    let sourced: Vec<_> = specs
                        .into_iter()
                        .map(|spec| leannodes_config::SourcedFlow { origin: leannodes_config::FlowOrigin::Store { version: 1 }, spec })
                        .collect();
                    let config = leannodes_config::parse_toml_with_flows("", "base.toml", std::path::Path::new("."), &sourced)
                        .expect("flows an import accepted compose on an empty configuration");
                    leannodes_fuzz::check_accepted(&config);
                }
                Err(d) => leannodes_fuzz::check_refusal(&d),
            }
        }
        _ => {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
            if let Err(problems) = leannodes_config::flow_spec_from_json(&value) {
                assert!(!problems.is_empty());
                for p in problems {
                    assert!(!p.message.is_empty() && !p.help.is_empty(), "{p:?}");
                }
            }
        }
    }
});
