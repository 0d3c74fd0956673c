//! The `syncret` binary: everything is in [`syncret::app`].
fn main() -> std::process::ExitCode {
    syncret::app::main(std::env::args_os())
}
