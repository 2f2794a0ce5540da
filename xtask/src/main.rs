//! Project automation: `cargo xtask dist | lab | bench | ci`.

fn main() {
    eprintln!("xtask: no commands yet");
    std::process::exit(2);
}
