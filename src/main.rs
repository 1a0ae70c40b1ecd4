fn main() {
    std::process::exit(lbprobe::exit::OK);
}
