//! Any bytes as a topology file: parsing and validation never panic or hang, every rejection
//! names a place (file:line:col) or the object it concerns, and a topology that validates is
//! rendered (keys stood in, as `plan` does) without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notif_infra::desired::{self, Addressing, Material};
use notif_infra::material::{KeyStore, auth, needed_keys, pki::PkiStore};
use notif_infra::topology::{Severity, Source, TopologyError, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = Source {
        path: "fuzz.yaml".into(),
        text: text.into(),
    };
    let loaded = match parse(source) {
        Ok(loaded) => loaded,
        Err(TopologyError::Invalid { diagnostics, .. }) => {
            for d in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
                assert!(
                    d.loc.is_some() || d.object.is_some(),
                    "a rejection that names no place: {}",
                    d.message
                );
            }
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let t = &loaded.topology;
    // Nothing exists under this tree: keys are stood in and nothing is written, as for `plan`.
    let tree = std::path::Path::new("/nonexistent/notif-infra-fuzz");
    let (keys, _) = KeyStore::new(tree).load_or_placeholder(&needed_keys(t)).expect("placeholders");
    let (certs, _) = PkiStore::new(tree)
        .inspect(&desired::cert_requests(t, &Addressing::Declared))
        .expect("inspecting an absent tree");
    let previous: std::collections::BTreeMap<std::path::PathBuf, String> = std::collections::BTreeMap::new();
    let issued = auth::issue(t, &keys, &previous, 0).expect("issuing with stand-in keys");
    let material = Material {
        keys: &keys,
        certs: &certs,
        issued: issued.as_ref(),
        tree,
    };
    let d = desired::build(t, &Addressing::Declared, &material);
    let _ = desired::render_files(&d);
});
