//! The Debian package (`cargo deb`; metadata in Cargo.toml, files in packaging/): installed into
//! a scratch root with `dpkg --root` (its maintainer scripts run with DPKG_ROOT, so users and
//! directories land in that root), then its files, modes, owners, conffiles, user, state
//! directory and unit are checked, the installed binary checks the installed configuration and
//! serves DNS from it, the unprivileged user binds port 53 with CAP_NET_BIND_SERVICE alone, and a
//! purge removes the state.
//!
//! The package is `MERIDIAN_DEB`, else `target/debian/meridian_<version>-1_<arch>.deb`; with
//! neither the install test says so and passes (`.ci/run` builds the package before the tests
//! and sets `MERIDIAN_DEB`, so CI never skips). The installing test needs root (dpkg gives files
//! to root, the postinst gives /var/lib/meridian to `meridian`); CI runs as root.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::package_kit::*;
use crate::support::knot_primary::free_port;
use crate::support::steering::{self, rdata};
use crate::support::{udp_raw, wait_for};

const UNIT: &str = "/lib/systemd/system/meridian.service";
const CONFIG: &str = "/etc/meridian/meridian.toml";
const CONFFILES: [&str; 3] = [
    "/etc/meridian/meridian.toml",
    "/etc/meridian/zones/example.com.zone",
    "/etc/meridian/zones/example.net.zone",
];
/// What the package installs (besides docs), with its mode. Every file is root's.
const FILES: [(&str, u32); 10] = [
    ("/usr/bin/meridian", 0o755),
    ("/etc/meridian/meridian.toml", 0o644),
    ("/etc/meridian/zones/example.com.zone", 0o644),
    ("/etc/meridian/zones/example.net.zone", 0o644),
    ("/usr/share/meridian/geo-data/iptoasn-country.mmdb", 0o644),
    ("/usr/share/meridian/geo-data/LICENSE-PDDL-1.0.txt", 0o644),
    (UNIT, 0o644),
    ("/usr/lib/sysusers.d/meridian.conf", 0o644),
    ("/usr/lib/tmpfiles.d/meridian.conf", 0o644),
    ("/usr/share/doc/meridian/copyright", 0o644),
];

fn repo(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The packaged configuration is the example with installed paths and port 53, and nothing
/// else: an edit to one that is not made to the other fails here. Needs no package.
#[test]
fn packaged_config_is_the_example_with_installed_paths() {
    let example: toml::Table = repo("config/meridian.toml").parse().unwrap();
    let packaged: toml::Table = repo("packaging/meridian.toml").parse().unwrap();
    let mut want = example.clone();
    let set = |t: &mut toml::Table, path: &[&str], v: toml::Value| {
        let (last, parents) = path.split_last().unwrap();
        let mut t = t;
        for p in parents {
            t = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        t.insert(last.to_string(), v);
    };
    let listen = ["127.0.0.1:53", "[::1]:53"].map(toml::Value::from).to_vec();
    set(&mut want, &["dns", "listen"], toml::Value::Array(listen));
    set(&mut want, &["checks", "alive", "port"], 53.into());
    let db = "/usr/share/meridian/geo-data/iptoasn-country.mmdb";
    set(&mut want, &["geo", "database"], db.into());
    let state = "/var/lib/meridian/state.json";
    set(&mut want, &["health", "state_file"], state.into());
    assert_eq!(
        packaged, want,
        "packaging/meridian.toml must be config/meridian.toml with only the installed paths and \
         port 53 changed"
    );
}

/// The unit the package installs is config/meridian.service (one unit, not two) and runs as the
/// package's user with CAP_NET_BIND_SERVICE only. Needs no package.
#[test]
fn the_unit_runs_as_the_meridian_user_with_bind_service_only() {
    let unit = repo("config/meridian.service");
    let lines: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for want in [
        "ExecStart=/usr/bin/meridian serve --config /etc/meridian/meridian.toml",
        "User=meridian",
        "Group=meridian",
        "StateDirectory=meridian",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(
            lines.contains(&want),
            "config/meridian.service: missing {want}"
        );
    }
    for l in &lines {
        assert!(
            !l.starts_with("DynamicUser="),
            "{l}: the package makes the user"
        );
        assert!(!l.contains("CAP_NET_RAW") && !l.contains("CAP_SYS"), "{l}");
    }
    let cargo = repo("Cargo.toml");
    assert!(
        cargo.contains(&format!(
            "[\"config/meridian.service\", \"{}\", \"644\"]",
            &UNIT[1..]
        )),
        "Cargo.toml's deb assets install config/meridian.service as {UNIT}"
    );
}

#[test]
fn package_installs_into_a_scratch_root_checks_serves_and_purges() {
    let Some(deb) = find_deb() else {
        println!(
            "no Debian package: skipping the install test (`cargo deb` builds \
             target/debian/meridian_{}-1_<arch>.deb, or set MERIDIAN_DEB; .ci/run does both)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    };
    if !is_root() {
        println!(
            "not root: skipping the install test of {} (CI runs it as root)",
            deb.display()
        );
        return;
    }
    println!("installing {}", deb.display());
    let ctl = tempfile::tempdir().unwrap();
    check_control(&deb, ctl.path());

    let root = Root::new();
    let out = root.dpkg(&["-i", deb.to_str().unwrap()]);
    assert!(out.status.success(), "dpkg -i:\n{}", show(&out));
    check_installed(&root);
    check_the_config_runs(&root);
    serve_port_53_unprivileged(&root);

    let out = root.dpkg(&["--purge", "meridian"]);
    assert!(out.status.success(), "dpkg --purge:\n{}", show(&out));
    for gone in [
        "/var/lib/meridian",
        "/etc/meridian/meridian.toml",
        "/usr/bin/meridian",
        UNIT,
    ] {
        assert!(!root.at(gone).exists(), "{gone} is still there after purge");
    }
    assert!(
        root.passwd("meridian").is_some(),
        "purge keeps the user (Debian practice)"
    );
}

/// The control fields, the maintainer scripts, the conffiles, and the archive's modes and owners.
fn check_control(deb: &Path, ctl: &Path) {
    let out = run_ok(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Package", "Version", "Depends"]),
    );
    let fields = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(fields.contains("Package: meridian\n"), "{fields}");
    let version = format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"));
    assert!(fields.contains(&version), "{fields}");
    for dep in [
        "libc6",
        "systemd | systemd-standalone-sysusers",
        "init-system-helpers",
    ] {
        assert!(fields.contains(dep), "Depends lacks {dep}: {fields}");
    }

    run_ok(Command::new("dpkg-deb").arg("-e").arg(deb).arg(ctl));
    let conffiles: BTreeSet<String> = std::fs::read_to_string(ctl.join("conffiles"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(conffiles, CONFFILES.map(str::to_string).into(), "conffiles");
    for script in ["postinst", "prerm", "postrm"] {
        let mode = std::fs::metadata(ctl.join(script)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{script}");
        assert_eq!(
            std::fs::read(ctl.join(script)).unwrap(),
            repo(&format!("packaging/scripts/{script}")).into_bytes(),
            "{script} is packaging/scripts/{script}"
        );
    }

    // Every entry of the archive is root's; nothing is setuid, nothing writable by others.
    let out = run_ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f[1] == "0/0" || f[1] == "root/root", "{line}: not root's");
        let perms = f[0].as_bytes();
        assert!(
            perms[3] != b's' && perms[6] != b's' && perms[8] != b'w',
            "{line}"
        );
        assert!(
            !f[5].starts_with("./var/"),
            "{line}: the postinst makes the state directory"
        );
    }
}

/// Files, modes, owners, the dpkg status, the user and group, the state directory, the unit.
fn check_installed(root: &Root) {
    for (path, mode) in FILES {
        let meta = std::fs::metadata(root.at(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(meta.is_file(), "{path}");
        assert_eq!(
            meta.mode() & 0o7777,
            mode,
            "{path}: mode {:o}",
            meta.mode() & 0o7777
        );
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}: owner");
    }
    assert_eq!(
        std::fs::read_to_string(root.at(CONFIG)).unwrap(),
        repo("packaging/meridian.toml")
    );
    assert_eq!(
        std::fs::read_to_string(root.at(UNIT)).unwrap(),
        repo("config/meridian.service")
    );

    let out = root.dpkg(&["-s", "meridian"]);
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        status.contains("Status: install ok installed"),
        "{}",
        show(&out)
    );
    for f in CONFFILES {
        assert!(
            status.contains(&format!("\n {f} ")),
            "dpkg status lacks conffile {f}:\n{status}"
        );
    }

    // The system user: an id below 1000, no login, home in the state directory; its group.
    let user = root
        .passwd("meridian")
        .expect("postinst made the user `meridian`");
    let (uid, gid): (u32, u32) = (user[2].parse().unwrap(), user[3].parse().unwrap());
    assert!(uid > 0 && uid < 1000, "system uid: {user:?}");
    assert_eq!(user[5], "/var/lib/meridian", "{user:?}");
    assert_eq!(user[6], "/usr/sbin/nologin", "{user:?}");
    let group = root
        .group("meridian")
        .expect("postinst made the group `meridian`");
    assert_eq!(group[2].parse::<u32>().unwrap(), gid, "{group:?}");
    let state = std::fs::metadata(root.at("/var/lib/meridian")).unwrap();
    assert!(state.is_dir());
    assert_eq!(state.mode() & 0o7777, 0o750);
    assert_eq!(
        (state.uid(), state.gid()),
        (uid, gid),
        "/var/lib/meridian owner"
    );

    // systemd's own check of the installed unit, with ExecStart at the installed binary.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("systemd-analyze is not installed: skipping `systemd-analyze verify` of {UNIT}");
        return;
    }
    let unit = std::fs::read_to_string(root.at(UNIT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("meridian.service");
    let bin = root.at("/usr/bin/meridian");
    let exec = "ExecStart=/usr/bin/meridian ";
    let unit = replace_once(&unit, exec, &format!("ExecStart={} ", bin.display()));
    std::fs::write(&copy, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && printed.trim().is_empty(),
        "systemd-analyze verify:\n{}",
        show(&out)
    );
}

/// The installed config with its absolute paths moved into the root, written beside it (so its
/// relative zone paths still reach the installed zones).
fn config_in_root(
    root: &Root,
    name: &str,
    edit: impl FnOnce(String) -> String,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root.at(CONFIG)).unwrap();
    let share = root.at("/usr/share/meridian").display().to_string();
    let lib = root.at("/var/lib/meridian").display().to_string();
    let text = replace_once(&text, "\"/usr/share/meridian/", &format!("\"{share}/"));
    let text = replace_once(&text, "\"/var/lib/meridian/", &format!("\"{lib}/"));
    let path = root.at(&format!("/etc/meridian/{name}"));
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Every path the installed config names is in the package; the installed binary checks it and
/// serves it (on a free loopback port) with the installed zones and GeoIP data.
fn check_the_config_runs(root: &Root) {
    let config: toml::Table = std::fs::read_to_string(root.at(CONFIG))
        .unwrap()
        .parse()
        .unwrap();
    let etc = Path::new("/etc/meridian");
    let mut named = vec![config["geo"]["database"].as_str().unwrap().to_string()];
    for z in config["zone"].as_array().unwrap() {
        named.push(etc.join(z["file"].as_str().unwrap()).display().to_string());
    }
    let state = config["health"]["state_file"].as_str().unwrap();
    named.push(Path::new(state).parent().unwrap().display().to_string());
    for path in &named {
        assert!(
            root.at(path).exists(),
            "the installed config names {path}, not installed"
        );
    }

    let bin = root.at("/usr/bin/meridian");
    let out = run_ok(Command::new(&bin).arg("--version"));
    let version = format!("meridian {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), version);
    let checked = config_in_root(root, "check.toml", |t| t);
    let out = run_ok(Command::new(&bin).args(["check", "--config"]).arg(&checked));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("zone example.com. serial 2026112701"),
        "{text}"
    );
    assert!(text.contains(": OK"), "{text}");

    let (port, admin) = (free_port(), free_port());
    let served = config_in_root(root, "served.toml", |t| {
        let t = replace_once(
            &t,
            "listen = [\"127.0.0.1:53\", \"[::1]:53\"]",
            &format!("listen = [\"127.0.0.1:{port}\"]"),
        );
        let t = replace_once(
            &t,
            "listen = \"127.0.0.1:9353\"",
            &format!("listen = \"127.0.0.1:{admin}\""),
        );
        replace_once(&t, "port = 53\n", &format!("port = {port}\n"))
    });
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--config"]).arg(&served);
    let server = Served::start(cmd).unwrap_or_else(|e| panic!("the installed server: {e}"));
    assert_eq!(server.udp.port(), port);

    let q = crate::support::query("www.example.com.", RecordType::A, None);
    let r =
        Message::from_vec(&udp_raw(server.udp, &q.to_vec().unwrap()).expect("an answer")).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r}");
    assert!(r.metadata.authoritative, "{r}");
    assert_eq!(rdata(&r), ["192.0.2.10", "192.0.2.11"], "{r}");

    // A US client (ECS) is steered to the us pool: the installed GeoIP data places it, and the
    // health checks of the server's own port have passed.
    let ask_us = || {
        let q = steering::query(
            0x5353,
            "www-gslb.example.com.",
            RecordType::A,
            Some(("8.8.8.0", 24)),
        );
        udp_raw(server.udp, &q.to_vec().unwrap()).map(|b| rdata(&Message::from_vec(&b).unwrap()))
    };
    wait_for(
        Duration::from_secs(15),
        "a US client steered to 198.51.100.10",
        || ask_us().is_some_and(|a| a == ["198.51.100.10"]),
    );
    assert!(server.stop().success(), "SIGTERM: a clean exit");
}

/// As the `meridian` user with CAP_NET_BIND_SERVICE as its only capability (what the unit
/// grants, applied with setpriv), the installed server binds port 53 on a loopback address and
/// answers; without the capability the same bind is refused.
fn serve_port_53_unprivileged(root: &Root) {
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("setpriv is not installed: skipping the unprivileged port 53 run");
        return;
    }
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1024);
    if start <= 53 {
        println!(
            "net.ipv4.ip_unprivileged_port_start is {start}: port 53 needs no capability here, skipping"
        );
        return;
    }
    // A loopback address whose port 53 is free, UDP and TCP.
    let Some(ip) = (1..=250u8).map(|n| format!("127.0.53.{n}")).find(|ip| {
        std::net::UdpSocket::bind((ip.as_str(), 53)).is_ok()
            && std::net::TcpListener::bind((ip.as_str(), 53)).is_ok()
    }) else {
        println!("no loopback address with a free port 53: skipping the unprivileged run");
        return;
    };
    let user = root.passwd("meridian").unwrap();
    let admin = free_port();
    let cfg = config_in_root(root, "port53.toml", |t| {
        let t = replace_once(
            &t,
            "listen = [\"127.0.0.1:53\", \"[::1]:53\"]",
            &format!("listen = [\"{ip}:53\"]"),
        );
        replace_once(
            &t,
            "listen = \"127.0.0.1:9353\"",
            &format!("listen = \"127.0.0.1:{admin}\""),
        )
    });
    let bin = root.at("/usr/bin/meridian");
    let as_meridian = |caps: &str| {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", user[2]))
            .arg(format!("--regid={}", user[3]))
            .arg("--clear-groups")
            .arg(format!("--inh-caps=-all{caps}"))
            .arg(format!("--ambient-caps=-all{caps}"))
            .arg(format!("--bounding-set=-all{caps}"))
            .arg("--no-new-privs")
            .arg(&bin)
            .args(["serve", "--config"])
            .arg(&cfg);
        cmd
    };
    let refused = Served::start(as_meridian(""))
        .err()
        .expect("port 53 refused without the capability");
    assert!(refused.contains("ermission denied"), "{refused}");

    let server = Served::start(as_meridian(",+net_bind_service"))
        .unwrap_or_else(|e| panic!("as meridian with CAP_NET_BIND_SERVICE: {e}"));
    assert_eq!(server.udp, format!("{ip}:53").parse().unwrap());
    let q = crate::support::query("www.example.com.", RecordType::A, None);
    let r =
        Message::from_vec(&udp_raw(server.udp, &q.to_vec().unwrap()).expect("an answer")).unwrap();
    assert_eq!(rdata(&r), ["192.0.2.10", "192.0.2.11"], "{r}");
    assert!(server.stop().success(), "SIGTERM: a clean exit");
}
