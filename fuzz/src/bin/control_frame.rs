fn main() {
    afl::fuzz!(|data: &[u8]| tickwire_fuzz::targets::control_frame(data));
}
