//! `.mpk` bundles built here (tar + gzip, as Calimero's build-bundle.sh makes them) from the
//! kv-store guest: installed on a real node over a memory store, and every way a bundle can be
//! bad refused with nothing stored.

use std::rc::Rc;

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_bundle::{abi, install, is_bundle, max_unpacked_bytes, Bundle, BundleError};
use tabnode_node::{FixedEnv, Node, NodeError};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::AppId;

fn kv_store() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/apps/dist/kv_store.wasm"
    );
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; build it with `bash tests/apps/build.sh`"))
}

const ABI: &str = r#"{"schema_version":"wasm-abi/1","methods":[{"name":"set","params":[{"name":"key","type":{"kind":"string"}},{"name":"value","type":{"kind":"string"}}]}]}"#;

fn manifest(wasm_len: usize, abi_len: usize) -> Value {
    json!({
        "version": "1.0",
        "package": "com.calimero.kv-store",
        "appVersion": "1.0.0",
        "minRuntimeVersion": "0.1.0",
        "wasm": {"path": "app.wasm", "size": wasm_len, "hash": null},
        "abi": {"path": "abi.json", "size": abi_len, "hash": null},
        "migrations": []
    })
}

/// A tar of `files` (path, bytes), gzipped.
fn pack(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    gzip(&tar.into_inner().unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn kv_bundle() -> Vec<u8> {
    let wasm = kv_store();
    let manifest = manifest(wasm.len(), ABI.len()).to_string();
    pack(&[
        ("manifest.json", manifest.as_bytes()),
        ("app.wasm", &wasm),
        ("abi.json", ABI.as_bytes()),
    ])
}

type TestNode = Node<Rc<MemoryStore>, FixedEnv>;

fn fresh_node() -> (TestNode, Rc<MemoryStore>) {
    let store = Rc::new(MemoryStore::default());
    let node = block_on(Node::open(
        store.clone(),
        FixedEnv::new(1),
        Runtime::new(Limits::default()),
    ))
    .unwrap();
    (node, store)
}

fn apps_namespace(store: &MemoryStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    block_on(store.scan_prefix(Namespace::Apps, b"")).unwrap()
}

#[test]
fn a_bundle_installs_its_wasm_under_the_wasms_id_and_keeps_its_abi() {
    let bytes = kv_bundle();
    assert!(is_bundle(&bytes));
    assert!(!is_bundle(&kv_store()));
    let bundle = Bundle::unpack(&bytes).unwrap();
    assert_eq!(bundle.manifest.package, "com.calimero.kv-store");
    assert_eq!(bundle.manifest.app_version, "1.0.0");
    assert_eq!(bundle.wasm, kv_store());

    let (mut node, store) = fresh_node();
    let app = block_on(install(&mut node, &store, &bundle)).unwrap();
    assert_eq!(app, AppId::of_wasm(&kv_store()));
    // The same id as the bare module installed on another node.
    let (mut bare, _) = fresh_node();
    assert_eq!(block_on(bare.install_app(&kv_store())).unwrap(), app);

    let stored = block_on(abi(&*store, &app)).unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).unwrap(),
        serde_json::from_str::<Value>(ABI).unwrap()
    );
    // The app runs.
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    block_on(node.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    let got = block_on(node.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(got.output, json!("v"));
    // A bare module has no ABI.
    let (_, other) = fresh_node();
    assert_eq!(block_on(abi(&*other, &app)).unwrap(), None);
}

#[test]
fn paths_may_start_with_dot_slash_and_the_wasm_defaults_to_app_wasm() {
    let wasm = kv_store();
    let manifest = json!({"version": "1.0", "package": "p", "appVersion": "1",
        "minRuntimeVersion": "0.1.0"})
    .to_string();
    let bytes = pack(&[
        ("./manifest.json", manifest.as_bytes()),
        ("./app.wasm", &wasm),
    ]);
    let bundle = Bundle::unpack(&bytes).unwrap();
    assert_eq!(bundle.wasm, wasm);
    assert_eq!(bundle.abi, None);

    // A pax global header first (as `git archive` writes one) and a directory are no files.
    let mut tar = tar::Builder::new(Vec::new());
    let comment = b"18 comment=abcdef\n";
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::XGlobalHeader);
    header.set_size(comment.len() as u64);
    tar.append_data(&mut header, "pax_global_header", &comment[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    tar.append_data(&mut header, "res/", &[][..]).unwrap();
    for (path, bytes) in [("manifest.json", manifest.as_bytes()), ("app.wasm", &wasm)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, path, bytes).unwrap();
    }
    let bundle = Bundle::unpack(&gzip(&tar.into_inner().unwrap())).unwrap();
    assert_eq!(bundle.wasm, wasm);
}

/// Whether an error is the one a case expects.
type IsExpected = fn(&BundleError) -> bool;

#[test]
fn bad_bundles_get_a_typed_error_and_store_nothing() {
    let wasm = kv_store();
    let good_manifest = manifest(wasm.len(), ABI.len()).to_string();
    let with_manifest = |m: &Value| {
        pack(&[
            ("manifest.json", m.to_string().as_bytes()),
            ("app.wasm", &wasm),
            ("abi.json", ABI.as_bytes()),
        ])
    };
    let mut no_wasm_named = manifest(wasm.len(), ABI.len());
    no_wasm_named["wasm"]["path"] = json!("res/other.wasm");
    let mut escaping = manifest(wasm.len(), ABI.len());
    escaping["abi"]["path"] = json!("../../etc/passwd");
    let mut wrong_size = manifest(wasm.len(), ABI.len());
    wrong_size["wasm"]["size"] = json!(wasm.len() + 1);
    let mut empty_package = manifest(wasm.len(), ABI.len());
    empty_package["package"] = json!("");
    let mut no_package = manifest(wasm.len(), ABI.len());
    no_package.as_object_mut().unwrap().remove("package");

    let symlink = {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        tar.append_link(&mut header, "app.wasm", "/etc/passwd")
            .unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(good_manifest.len() as u64);
        tar.append_data(&mut header, "manifest.json", good_manifest.as_bytes())
            .unwrap();
        gzip(&tar.into_inner().unwrap())
    };

    let cases: Vec<(&str, Vec<u8>, IsExpected)> = vec![
        ("a bare wasm", wasm.clone(), |e| *e == BundleError::NotGzip),
        (
            "gzip of no tar",
            gzip(b"hello, not a tar archive at all"),
            |e| matches!(e, BundleError::Unreadable(_)),
        ),
        ("a torn gzip", kv_bundle()[..200].to_vec(), |e| {
            matches!(e, BundleError::Unreadable(_))
        }),
        (
            "no manifest",
            pack(&[("app.wasm", &wasm), ("abi.json", ABI.as_bytes())]),
            |e| *e == BundleError::NoManifest,
        ),
        (
            "no wasm",
            pack(&[
                ("manifest.json", good_manifest.as_bytes()),
                ("abi.json", ABI.as_bytes()),
            ]),
            |e| {
                matches!(
                    e,
                    BundleError::MissingFile {
                        what: "the wasm",
                        ..
                    }
                )
            },
        ),
        (
            "no abi",
            pack(&[
                ("manifest.json", good_manifest.as_bytes()),
                ("app.wasm", &wasm),
            ]),
            |e| {
                matches!(
                    e,
                    BundleError::MissingFile {
                        what: "the ABI",
                        ..
                    }
                )
            },
        ),
        (
            "the manifest names a missing wasm",
            with_manifest(&no_wasm_named),
            |e| matches!(e, BundleError::MissingFile { path, .. } if path == "res/other.wasm"),
        ),
        ("a path out of the bundle", with_manifest(&escaping), |e| {
            matches!(e, BundleError::UnsafePath { .. })
        }),
        ("a size that differs", with_manifest(&wrong_size), |e| {
            matches!(e, BundleError::SizeMismatch { .. })
        }),
        ("an empty package", with_manifest(&empty_package), |e| {
            matches!(e, BundleError::BadManifest(_))
        }),
        ("no package", with_manifest(&no_package), |e| {
            matches!(e, BundleError::BadManifest(_))
        }),
        (
            "a manifest that is not JSON",
            pack(&[("manifest.json", b"{nope"), ("app.wasm", &wasm)]),
            |e| matches!(e, BundleError::BadManifest(_)),
        ),
        (
            "an ABI that is not JSON",
            pack(&[
                ("manifest.json", good_manifest.as_bytes()),
                ("app.wasm", &wasm),
                ("abi.json", &vec![b'x'; ABI.len()]),
            ]),
            |e| matches!(e, BundleError::BadAbi { .. }),
        ),
        (
            "a file twice",
            pack(&[
                ("manifest.json", good_manifest.as_bytes()),
                ("app.wasm", &wasm),
                ("./app.wasm", &wasm),
                ("abi.json", ABI.as_bytes()),
            ]),
            |e| matches!(e, BundleError::Duplicate { .. }),
        ),
        ("a symlink", symlink, |e| {
            matches!(e, BundleError::NotAFile { .. })
        }),
    ];
    let (mut node, store) = fresh_node();
    for (what, bytes, expected) in cases {
        let err = Bundle::unpack(&bytes).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
    // Checks pass but the wasm is not a module: the node refuses it, nothing kept.
    let manifest = manifest(9, ABI.len()).to_string();
    let not_wasm = pack(&[
        ("manifest.json", manifest.as_bytes()),
        ("app.wasm", b"\0asm junk"),
        ("abi.json", ABI.as_bytes()),
    ]);
    let bundle = Bundle::unpack(&not_wasm).unwrap();
    let err = block_on(install(&mut node, &store, &bundle)).unwrap_err();
    assert!(matches!(err, NodeError::InvalidApp(_)), "{err}");
    assert_eq!(apps_namespace(&store), vec![]);
}

#[test]
fn unpacking_is_capped_in_total_also_for_what_is_skipped() {
    // 30 MiB of zeros gzip to about 30 KB: past the cap, in a file no manifest names, in a
    // bundle under 1 MiB.
    let zeros = vec![0u8; 30 * 1024 * 1024];
    let wasm = kv_store();
    let manifest = manifest(wasm.len(), ABI.len()).to_string();
    let bomb = pack(&[
        ("manifest.json", manifest.as_bytes()),
        ("app.wasm", &wasm),
        ("abi.json", ABI.as_bytes()),
        ("padding.bin", &zeros),
    ]);
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    assert_eq!(
        Bundle::unpack(&bomb),
        Err(BundleError::TooLarge {
            max: max_unpacked_bytes()
        })
    );
    // A wasm just over a small cap, and a bundle that fits it exactly.
    let small = kv_bundle();
    let unpacked = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&small[..])
            .read_to_end(&mut out)
            .unwrap();
        out.len()
    };
    assert!(Bundle::unpack_capped(&small, unpacked).is_ok());
    assert_eq!(
        Bundle::unpack_capped(&small, wasm.len()),
        Err(BundleError::TooLarge { max: wasm.len() })
    );
}

/// Signs `manifest` as Calimero's mero-sign does, with the key of `seed`.
fn sign(manifest: &mut Value, seed: [u8; 32]) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    tabnode_bundle::signature::sign(manifest, &key).unwrap()
}

#[test]
fn what_is_signed_is_the_canonical_manifest_without_its_signature() {
    use sha2::Digest;
    let manifest = json!({"package": "p", "appVersion": "1", "_binary": "x",
        "signature": {"algorithm": "ed25519"}, "a": [1.0, "é"]});
    let canonical = r#"{"a":[1,"é"],"appVersion":"1","package":"p"}"#;
    assert_eq!(
        tabnode_bundle::signature::signing_payload(&manifest).unwrap(),
        <[u8; 32]>::from(sha2::Sha256::digest(canonical.as_bytes()))
    );
    // did:key of an ed25519 key: multicodec 0xed01, base58btc.
    assert!(tabnode_bundle::signature::did_key(&[0; 32]).starts_with("did:key:z6Mk"));
}

#[test]
fn a_signed_manifest_is_checked_and_its_signer_reported() {
    let wasm = kv_store();
    let pack_with = |m: &Value| {
        pack(&[
            ("manifest.json", m.to_string().as_bytes()),
            ("app.wasm", &wasm),
            ("abi.json", ABI.as_bytes()),
        ])
    };
    let mut signed = manifest(wasm.len(), ABI.len());
    let signer = sign(&mut signed, [9; 32]);
    let bundle = Bundle::unpack(&pack_with(&signed)).unwrap();
    assert_eq!(bundle.signer_id.as_deref(), Some(signer.as_str()));
    let unsigned = Bundle::unpack(&pack_with(&manifest(wasm.len(), ABI.len()))).unwrap();
    assert_eq!(unsigned.signer_id, None);

    let mut altered = signed.clone();
    altered["appVersion"] = json!("6.6.6");
    let mut other_signer = signed.clone();
    other_signer["signerId"] = json!(tabnode_bundle::signature::did_key(&[1; 32]));
    let mut no_signer = signed.clone();
    no_signer.as_object_mut().unwrap().remove("signerId");
    let mut other_algorithm = signed.clone();
    other_algorithm["signature"]["algorithm"] = json!("Ed25519");
    let mut short_key = signed.clone();
    short_key["signature"]["publicKey"] = json!("AAAA");
    for (what, m) in [
        ("an altered field", altered),
        ("another signerId", other_signer),
        ("no signerId", no_signer),
        ("another algorithm", other_algorithm),
        ("a short key", short_key),
    ] {
        let err = Bundle::unpack(&pack_with(&m)).unwrap_err();
        assert!(
            matches!(err, BundleError::BadSignature(_)),
            "{what}: {err:?}"
        );
    }
    // `_` fields are outside what is signed, as merod reads them.
    let mut transient = signed;
    transient["_overwrite"] = json!(true);
    assert!(Bundle::unpack(&pack_with(&transient)).is_ok());
}
