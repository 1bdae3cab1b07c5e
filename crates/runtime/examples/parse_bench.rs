fn main() {
    let bytes = std::fs::read("/tmp/prof-bundle/config.json").unwrap();
    let t = std::time::Instant::now();
    let s: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).unwrap();
    let cold = t.elapsed();
    let t = std::time::Instant::now();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let value_cold = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..1000 {
        let s2: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).unwrap();
        std::hint::black_box(s2);
    }
    let warm = t.elapsed() / 1000;
    println!(
        "cold {cold:?} value-cold {value_cold:?} warm {warm:?} {}",
        s.version().len() + v.is_object() as usize
    );
}
