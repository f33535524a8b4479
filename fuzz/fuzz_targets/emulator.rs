//! One embedded AWS per fuzzing process, in a temporary directory.

use std::sync::OnceLock;

struct Running {
    emulator: aws_emulator::Emulator,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn running() -> &'static Running {
    static E: OnceLock<Running> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let cfg = aws_emulator::EmulatorConfig {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        };
        let emulator = runtime.block_on(aws_emulator::Emulator::start(cfg)).expect("emulator starts");
        Running { emulator, runtime, _dir: dir }
    })
}

/// [`aws_emulator::Emulator::serve_as`] as the customer in us-east-1, inside the emulator's
/// runtime (some operations start listeners, as VPC endpoints do).
pub fn serve(target: Option<&str>, body: &[u8]) -> u16 {
    let r = running();
    let _guard = r.runtime.enter();
    r.emulator.serve_as("customer", "us-east-1", target, body)
}
