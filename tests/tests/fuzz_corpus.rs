//! The fuzz targets' bodies (`fuzz/src/targets.rs`) over the committed corpus
//! (`fuzz/corpus/<target>/`): seeds and whatever a fuzzing run added, crashes it found
//! included once fixed. `scripts/fuzz` runs the same bodies under AFL++ for longer.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

#[test]
fn every_target_takes_its_whole_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for &(name, body) in targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| f.expect("a corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name} has no corpus");
        for file in files {
            let bytes = std::fs::read(&file).expect("a corpus file");
            let run = std::panic::catch_unwind(|| body(&bytes));
            assert!(run.is_ok(), "{name} panicked on {}", file.display());
        }
    }
}
