//! One embedded AWS per fuzzing process, in a temporary directory.

use std::sync::OnceLock;

pub struct Running {
    pub emulator: aws_emulator::Emulator,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

pub fn get() -> &'static aws_emulator::Emulator {
    static E: OnceLock<Running> = OnceLock::new();
    &E.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let cfg = aws_emulator::EmulatorConfig {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        };
        let emulator = runtime.block_on(aws_emulator::Emulator::start(cfg)).expect("emulator starts");
        Running { emulator, _runtime: runtime, _dir: dir }
    })
    .emulator
}
