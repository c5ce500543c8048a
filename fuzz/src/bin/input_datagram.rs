fn main() {
    afl::fuzz!(|data: &[u8]| tickwire_fuzz::targets::input_datagram(data));
}
