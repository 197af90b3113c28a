//! scripts/install-deps.sh decides what to install from what the build and
//! the tests will use. These tests run its checks against a fake root and a
//! PATH of stub tools, so they do not depend on what this machine has.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ALL_TOOLS: &[&str] = &[
    "redis-server",
    "redis-cli",
    "redis-benchmark",
    "python3",
    "node",
    "npm",
    "cargo",
];

struct FakeMachine {
    dir: PathBuf,
}

impl FakeMachine {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rl-deps-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        fs::create_dir_all(dir.join("bin")).unwrap();
        FakeMachine { dir }
    }

    fn with_tools(self, tools: &[&str]) -> Self {
        for tool in tools {
            self.tool(tool, "exit 0");
        }
        self
    }

    fn tool(&self, name: &str, body: &str) {
        let path = self.dir.join("bin").join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn without_tool(&self, name: &str) {
        fs::remove_file(self.dir.join("bin").join(name)).unwrap();
    }

    fn file(self, path: &str) -> Self {
        let path = self.dir.join("root").join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"").unwrap();
        self
    }

    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-deps.sh");
        let mut command = Command::new("/bin/bash");
        command
            .arg(script)
            .args(args)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("RL_DEPS_ROOT", self.dir.join("root"));
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    /// The packages a real run would install.
    fn would_install(&self) -> Vec<String> {
        self.would_install_with(&[])
    }

    fn would_install_with(&self, env: &[(&str, &Path)]) -> Vec<String> {
        let output = self.run(&["--dry-run"], env);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    fn root(&self, path: &str) -> PathBuf {
        self.dir.join("root").join(path)
    }
}

impl Drop for FakeMachine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Debian 12's libclang-dev, as laid out on disk.
fn with_debian_libclang(machine: FakeMachine) -> FakeMachine {
    machine
        .file("usr/lib/x86_64-linux-gnu/libclang-14.so.1")
        .file("usr/lib/llvm-14/lib/libclang.so")
        .file("usr/lib/llvm-14/lib/libclang.so.1")
        .file("usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h")
}

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    let machine = FakeMachine::new("cpp")
        .with_tools(ALL_TOOLS)
        .file("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14")
        .file("usr/lib/llvm-14/lib/libclang-cpp.so.14")
        .file("usr/lib/llvm-14/lib/libclang-cpp.so");
    assert_eq!(machine.would_install(), ["libclang-dev"]);
}

#[test]
fn nothing_is_installed_when_everything_is_there() {
    let machine = with_debian_libclang(FakeMachine::new("complete").with_tools(ALL_TOOLS));
    assert!(machine.would_install().is_empty());
}

#[test]
fn the_library_without_clangs_headers_is_not_enough() {
    let machine = FakeMachine::new("headerless")
        .with_tools(ALL_TOOLS)
        .file("usr/lib/x86_64-linux-gnu/libclang-14.so.1");
    assert_eq!(machine.would_install(), ["libclang-dev"]);
}

#[test]
fn libclang_path_is_the_only_place_searched_when_set() {
    let machine = with_debian_libclang(FakeMachine::new("libclang-path").with_tools(ALL_TOOLS))
        .file("opt/llvm/lib/libclang.so")
        .file("opt/llvm/lib/clang/18/include/stddef.h")
        .file("opt/empty/.keep");
    let custom = machine.root("opt/llvm/lib");
    assert!(machine
        .would_install_with(&[("LIBCLANG_PATH", &custom)])
        .is_empty());
    let empty = machine.root("opt/empty");
    assert_eq!(
        machine.would_install_with(&[("LIBCLANG_PATH", &empty)]),
        ["libclang-dev"]
    );
}

#[test]
fn each_missing_tool_names_its_package_once() {
    let machine = with_debian_libclang(FakeMachine::new("tools").with_tools(&["cargo"]));
    assert_eq!(
        machine.would_install(),
        [
            "redis-server",
            "redis-tools",
            "python3-venv",
            "nodejs",
            "npm"
        ]
    );
    machine.tool("redis-server", "exit 0");
    machine.tool("redis-cli", "exit 0");
    machine.tool("node", "exit 0");
    machine.tool("npm", "exit 0");
    assert_eq!(machine.would_install(), ["redis-tools", "python3-venv"]);
}

#[test]
fn python_without_ensurepip_needs_python3_venv() {
    let machine = with_debian_libclang(FakeMachine::new("venv").with_tools(ALL_TOOLS));
    machine.tool("python3", "exit 1");
    assert_eq!(machine.would_install(), ["python3-venv"]);
}

#[test]
fn without_apt_get_it_says_what_to_install_and_stops() {
    let machine = FakeMachine::new("no-apt").with_tools(ALL_TOOLS);
    machine.without_tool("redis-benchmark");
    let output = machine.run(&[], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("redis-tools libclang-dev"), "{stderr}");
    assert!(stderr.contains("no apt-get"), "{stderr}");
}

#[test]
fn without_cargo_it_says_which_rust_to_install() {
    let machine = with_debian_libclang(FakeMachine::new("no-cargo").with_tools(ALL_TOOLS));
    machine.without_tool("cargo");
    let output = machine.run(&[], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let rust_version = env!("CARGO_PKG_RUST_VERSION");
    assert!(!rust_version.is_empty());
    assert!(
        stderr.contains(&format!("Rust {rust_version} or newer")),
        "{stderr}"
    );
}
