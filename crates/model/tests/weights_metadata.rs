//! Networks that know themselves: the weights file stores activation, widths, init, seed and
//! dtype, mismatches are named, old files still load, bad files name their real cause.

use std::collections::HashMap;
use std::path::PathBuf;

use mspinn_model::mlp::read_config;
use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig, ModelError, Tensor};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("mspinn-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn sin_net(dtype: DType) -> Mlp {
    let cfg = MlpConfig::new(vec![7, 5], Activation::Sin, Init::GlorotUniform, 1234);
    Mlp::new(cfg, dtype, &Device::Cpu).unwrap()
}

fn same_params(a: &Mlp, b: &Mlp) -> bool {
    let (pa, pb) = (a.flat_params().unwrap(), b.flat_params().unwrap());
    pa.len() == pb.len() && pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn the_file_stores_the_config_and_loads_with_it() {
    let dir = TempDir::new("meta");
    for dtype in [DType::F32, DType::F64] {
        let a = sin_net(dtype);
        let path = dir.file(&format!("w-{dtype:?}.safetensors"));
        a.save(&path).unwrap();
        let (cfg, stored_dtype) = read_config(&path).unwrap().expect("metadata written");
        assert_eq!(&cfg, a.config());
        assert_eq!(stored_dtype, dtype);
        // Before: the loader always built tanh, init glorot-normal, seed 0.
        let b = Mlp::load_with_config(&path, &Device::Cpu).unwrap();
        assert_eq!(b.config(), a.config());
        assert_eq!(b.activation(), Activation::Sin);
        assert_eq!(b.dtype(), dtype);
        assert!(same_params(&a, &b));
        // The given config, checked: equal activation and widths load.
        let c = Mlp::load_checked(&path, a.config(), DType::F64, &Device::Cpu).unwrap();
        assert_eq!(c.config(), a.config());
        assert_eq!(c.dtype(), DType::F64);
    }
}

#[test]
fn a_mismatched_activation_or_width_names_both() {
    let dir = TempDir::new("mismatch");
    let a = sin_net(DType::F64);
    let path = dir.file("w.safetensors");
    a.save(&path).unwrap();
    // Before: `load(.., Tanh, ..)` of a sin network returned a tanh network, exit 0.
    let e = Mlp::load(&path, Activation::Tanh, DType::F64, &Device::Cpu).unwrap_err();
    match &e {
        ModelError::WeightsMismatch {
            field,
            stored,
            given,
            ..
        } => {
            assert_eq!(*field, "activation");
            assert_eq!(stored, "sin");
            assert_eq!(given, "tanh");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("activation = sin") && msg.contains("activation = tanh"),
        "{msg}"
    );
    let wrong_widths = MlpConfig::new(vec![7, 6], Activation::Sin, Init::GlorotUniform, 1234);
    let e = Mlp::load_checked(&path, &wrong_widths, DType::F64, &Device::Cpu).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("widths = [7, 5]") && msg.contains("widths = [7, 6]"),
        "{msg}"
    );
    // The matching activation still loads through the old signature.
    let b = Mlp::load(&path, Activation::Sin, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(b.config(), a.config());
}

/// A file as mspinn wrote it before metadata: tensors only.
fn save_without_metadata(net: &Mlp, path: &std::path::Path) {
    candle_core::safetensors::save(&net.named_tensors(), path).unwrap();
}

#[test]
fn an_old_file_without_metadata_loads_with_the_given_config() {
    let dir = TempDir::new("old");
    let a = sin_net(DType::F64);
    let path = dir.file("old.safetensors");
    save_without_metadata(&a, &path);
    assert_eq!(read_config(&path).unwrap(), None);
    let b = Mlp::load(&path, Activation::Sin, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(b.activation(), Activation::Sin);
    assert_eq!(b.config().hidden, vec![7, 5]);
    assert!(same_params(&a, &b));
    let c = Mlp::load_checked(&path, a.config(), DType::F64, &Device::Cpu).unwrap();
    assert_eq!(c.config(), a.config());
    // Widths are still checked against the tensors.
    let other = MlpConfig::new(vec![7], Activation::Sin, Init::GlorotUniform, 1);
    assert!(matches!(
        Mlp::load_checked(&path, &other, DType::F64, &Device::Cpu),
        Err(ModelError::WeightsMismatch {
            field: "widths",
            ..
        })
    ));
    // Without metadata the file alone cannot say its activation.
    let e = Mlp::load_with_config(&path, &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("no network metadata"), "{e}");
}

#[test]
fn truncated_corrupt_and_missing_files_name_the_real_cause() {
    let dir = TempDir::new("bad");
    let a = sin_net(DType::F64);
    let path = dir.file("w.safetensors");
    a.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for (name, content) in [
        ("truncated.safetensors", bytes[..bytes.len() - 9].to_vec()),
        ("header-only.safetensors", bytes[..20].to_vec()),
        ("empty.safetensors", Vec::new()),
        (
            "garbage.safetensors",
            b"this is not a weights file at all".to_vec(),
        ),
    ] {
        let p = dir.file(name);
        std::fs::write(&p, &content).unwrap();
        for e in [
            Mlp::load(&p, Activation::Sin, DType::F64, &Device::Cpu).unwrap_err(),
            Mlp::load_with_config(&p, &Device::Cpu).unwrap_err(),
            read_config(&p).unwrap_err(),
        ] {
            let msg = e.to_string();
            assert!(
                msg.contains("truncated or corrupt") && !msg.contains("does not exist"),
                "{name}: {msg}"
            );
            assert!(msg.contains(name), "{name}: {msg}");
        }
    }
    let e = Mlp::load_with_config(&dir.file("missing.safetensors"), &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn integer_weights_are_refused_with_their_dtype() {
    let dir = TempDir::new("int");
    let a = sin_net(DType::F64);
    let mut map: HashMap<String, Tensor> = a.named_tensors();
    // Before: an i64 file loaded (values truncated to integers), and the NTK came out as 0.
    let w = map["layers.1.weight"].to_dtype(DType::I64).unwrap();
    map.insert("layers.1.weight".into(), w);
    let path = dir.file("i64.safetensors");
    candle_core::safetensors::save(&map, &path).unwrap();
    for e in [
        Mlp::load(&path, Activation::Sin, DType::F64, &Device::Cpu).unwrap_err(),
        read_config(&path).unwrap_err(),
    ] {
        match &e {
            ModelError::WeightsDType { tensor, dtype, .. } => {
                assert_eq!(tensor, "layers.1.weight");
                assert_eq!(*dtype, DType::I64);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("I64"), "{e}");
    }
}

#[test]
fn bad_metadata_is_named() {
    let dir = TempDir::new("badmeta");
    let a = sin_net(DType::F64);
    for (key, value, expect) in [
        ("mspinn.activation", "relu", "mspinn.activation"),
        ("mspinn.hidden", "7,x", "mspinn.hidden"),
        ("mspinn.hidden", "7,6", "[7, 6]"),
        ("mspinn.dtype", "i64", "mspinn.dtype"),
        ("mspinn.format", "99", "format"),
    ] {
        let mut meta = a.metadata();
        meta.insert(key.to_owned(), value.to_owned());
        let path = dir.file(&format!("{key}-{value}.safetensors"));
        safetensors::serialize_to_file(&a.named_tensors(), Some(meta), &path).unwrap();
        let e = Mlp::load_with_config(&path, &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains(expect), "{key} = {value}: {e}");
    }
}

/// Two saves of the same network are the same bytes (a resumed run compares weights files).
#[test]
fn saving_twice_gives_the_same_bytes() {
    let dir = TempDir::new("twice");
    let a = sin_net(DType::F64);
    let (p, q) = (dir.file("a.safetensors"), dir.file("b.safetensors"));
    a.save(&p).unwrap();
    for _ in 0..8 {
        a.save(&q).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    }
}
