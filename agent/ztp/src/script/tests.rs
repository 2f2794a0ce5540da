use std::path::Path;
use std::process::Command;

use super::*;

fn digest(file_name: &str) -> ImageDigest {
    ImageDigest {
        sha256_hex: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        size: 1_073_741_824,
        file_name: file_name.into(),
    }
}

/// Runs bash with the script's variable header only, printing the variables
/// NUL-separated: what bash really makes of the quoting.
fn header_values(script: &str, dir: &Path) -> Vec<String> {
    let header = script.split(BODY).next().unwrap();
    let probe = format!(
        "{header}\nprintf '%s\\0' \"$BASE_URL\" \"$SERIAL\" \"$VERSION\" \"$IMAGE\" \"$IMAGE_SIZE\" \"$IMAGE_SHA256\" \"$FLASH\"\n"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(probe)
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_owned)
        .collect()
}

#[test]
fn golden() {
    let image = digest("EOS-4.33.2F.swi");
    let script = render(&UpgradeScript {
        base_url: "http://10.0.0.0",
        image: &image,
        serial: Some("JPE20000003"),
        version: "4.33.2F",
    });
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/upgrade-script.golden.sh");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &script).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        script,
        want,
        "rendered script differs from {}",
        golden.display()
    );
    assert!(script.starts_with("#!/bin/bash\n"));

    let out = Command::new("bash")
        .arg("-n")
        .arg(&golden)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn values_are_quoted_so_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let attempts = [
        "'; touch pwned; '",
        "$(touch pwned)",
        "`touch pwned`",
        "\"; touch pwned; \"",
        "x\ntouch pwned\n",
        "x'\\''; touch pwned #",
        "a\r\nX-Injected: 1",
        "${IFS}$(touch${IFS}pwned)",
    ];
    for evil in attempts {
        let image = ImageDigest {
            sha256_hex: format!("ab{evil}"),
            size: 10,
            file_name: format!("EOS{evil}.swi"),
        };
        let script = render(&UpgradeScript {
            base_url: &format!("http://10.0.0.0{evil}"),
            image: &image,
            serial: Some(evil),
            version: evil,
        });
        let values = header_values(&script, dir.path());
        let clean: String = evil.chars().filter(|c| !c.is_control()).collect();
        assert_eq!(values[0], format!("http://10.0.0.0{clean}"), "{evil:?}");
        assert_eq!(values[1], clean, "{evil:?}");
        assert_eq!(values[2], clean, "{evil:?}");
        assert!(is_safe_file_name(&values[3]), "{evil:?} -> {:?}", values[3]);
        assert_eq!(values[4], "10");
        let hex: String = format!("ab{evil}")
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        assert_eq!(
            values[5],
            hex.to_ascii_lowercase(),
            "only hex digits survive: {evil:?}"
        );
        assert_eq!(values[6], "/mnt/flash");
        assert!(!dir.path().join("pwned").exists(), "{evil:?} ran a command");
        // No value can break a line: the header is exactly its assignments.
        let header = script.split(BODY).next().unwrap();
        assert_eq!(header.lines().count(), 3 + 10 + 1, "{evil:?}:\n{header}");
    }
}

#[test]
fn file_names_are_reduced_to_safe_characters() {
    assert_eq!(safe_file_name("EOS-4.33.2F.swi"), "EOS-4.33.2F.swi");
    assert_eq!(safe_file_name("EOS 4.swi"), "EOS_4.swi");
    assert_eq!(safe_file_name("../../etc/x"), "EOS.._.._etc_x");
    assert_eq!(safe_file_name("-rf"), "EOS-rf");
    assert_eq!(safe_file_name(""), "EOS");
    assert_eq!(safe_file_name("é.swi"), "_.swi");
}

#[test]
fn no_serial_sends_no_serial_header() {
    let image = digest("EOS.swi");
    let script = render(&UpgradeScript {
        base_url: "http://10.0.0.0:8080/",
        image: &image,
        serial: None,
        version: "4.33.2F",
    });
    assert!(script.contains("\nSERIAL=''\n"));
    assert!(
        script.contains("\nBASE_URL='http://10.0.0.0:8080'\n"),
        "trailing slash trimmed"
    );
}
