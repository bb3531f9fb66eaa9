fn main() {
    std::process::exit(batty::main_entry());
}
