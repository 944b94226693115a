//! OSCAL catalog import: any bytes are parsed, checked and turned into rows, or
//! refused with the path of the first problem — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruleiq_services::frameworks::oscal;

fuzz_target!(|data: &[u8]| {
    let _ = oscal::check(data);
});
