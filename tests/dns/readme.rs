//! The configuration examples in README.md are real: every ```toml block parses and validates.

use std::path::Path;

use meridian::config::Config;

fn toml_blocks(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, "```toml") => cur = Some(String::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_toml_example_in_the_readme_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = toml_blocks(&readme);
    assert!(blocks.len() >= 3, "found only {} toml blocks", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("config/zones/example.com.zone"),
        dir.path().join("example.com.zone"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::copy(
        root.join("config/zones/example.com.zone"),
        dir.path().join("zones/example.com.zone"),
    )
    .unwrap();
    for (i, block) in blocks.iter().enumerate() {
        // Blocks that only show checks get a [dns] table; zone paths resolve in the temp dir.
        let geo = root.join("geo-data").display().to_string();
        let text = block
            .replace("/var/lib/meridian/state.json", "state.json")
            .replace("../geo-data", &geo);
        let path = dir.path().join(format!("readme-{i}.toml"));
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = Config::load(&path) {
            panic!("README toml block {i} does not validate:\n{e}\n---\n{text}");
        }
    }
}
