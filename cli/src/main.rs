fn main() -> std::process::ExitCode {
    assetbox_cli::main()
}
