//! Writes the seed corpus into `fuzz/corpus/<target>/` (run from `fuzz/`).

fn main() -> std::io::Result<()> {
    for (target, name, bytes) in tickwire_fuzz::seeds::seeds() {
        let dir = std::path::Path::new("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}
