fn main() {
    afl::fuzz!(|data: &[u8]| tickwire_fuzz::targets::json_payload(data));
}
