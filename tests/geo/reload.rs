//! Reload by rename, refusal of bad files with the old database kept, errors naming the file.

use std::path::Path;

use meridian::geo::{GeoDb, GeoError, GeoSource};

use crate::{data, ip};

/// Writes `bytes` beside `dest` and renames it into place, as geoipupdate does.
fn replace(dest: &Path, bytes: &[u8]) {
    let tmp = dest.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

#[test]
fn reload_by_rename_and_refusal_of_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoIP2-City.mmdb");
    let country = std::fs::read(data("test/GeoLite2-Country-Test.mmdb")).unwrap();
    let city_bytes = std::fs::read(data("test/GeoIP2-City-Test.mmdb")).unwrap();
    replace(&path, &country);
    let source = GeoSource::open(&path).unwrap();
    assert_eq!(source.path(), path);
    assert_eq!(source.load().database_type(), "GeoLite2-Country");
    assert!(!source.reload_if_changed().unwrap(), "unchanged file");
    let old = source.current();

    // A valid replacement is picked up; a handle to the old one still answers.
    replace(&path, &city_bytes);
    assert!(source.reload_if_changed().unwrap());
    assert_eq!(source.load().database_type(), "GeoIP2-City");
    assert!(
        source
            .load()
            .lookup(ip("216.160.83.56"))
            .unwrap()
            .subdivision
            .is_some()
    );
    assert_eq!(
        old.lookup(ip("81.2.69.142")).unwrap().country_str(),
        Some("GB")
    );
    drop(old);

    // Corrupt replacements are refused, named, and the loaded database keeps answering.
    let mut tree_smashed = city_bytes.clone();
    tree_smashed[..4096].fill(0xff);
    let bad: [(&str, &[u8]); 4] = [
        ("garbage", b"this is not a MaxMind DB file at all\n"),
        ("truncated", &city_bytes[..city_bytes.len() / 2]),
        ("empty", b""),
        ("search tree overwritten", &tree_smashed),
    ];
    for (what, bytes) in bad {
        replace(&path, bytes);
        let err = source.reload_if_changed().unwrap_err();
        assert!(matches!(err, GeoError::Invalid { .. }), "{what}: {err:?}");
        assert!(
            err.to_string().contains(&*path.to_string_lossy()),
            "{what}: {err}"
        );
        assert!(
            !source.reload_if_changed().unwrap(),
            "{what}: reported once"
        );
        assert_eq!(source.load().database_type(), "GeoIP2-City", "{what}");
        assert_eq!(
            source
                .load()
                .lookup(ip("89.160.20.112"))
                .unwrap()
                .country_str(),
            Some("SE")
        );
    }

    // A missing file is an error naming it; the old database stays.
    std::fs::remove_file(&path).unwrap();
    let err = source.reload_if_changed().unwrap_err();
    assert!(
        matches!(&err, GeoError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains("GeoIP2-City.mmdb"), "{err}");
    assert_eq!(
        source
            .load()
            .lookup(ip("2001:218::1"))
            .unwrap()
            .country_str(),
        Some("JP")
    );
    replace(&path, &country);
    assert!(source.reload_if_changed().unwrap());
    assert_eq!(source.load().database_type(), "GeoLite2-Country");
}

#[test]
fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.mmdb");
    let err = GeoDb::open(&missing).unwrap_err();
    assert!(matches!(err, GeoError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("geo database {}: ", missing.display())),
        "{err}"
    );
    assert!(matches!(
        GeoDb::open(dir.path()).unwrap_err(),
        GeoError::NotAFile { .. }
    ));
    assert!(GeoSource::open(&missing).is_err());
}
