fn main() {
    afl::fuzz!(|data: &[u8]| tickwire_fuzz::targets::schema_json(data));
}
