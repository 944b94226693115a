//! Assessments: answering a framework's questions, and scoring the answers.
//!
//! The scoring model is API.md's, as a pure function here so it can be tested
//! exhaustively; storing assessments and answers builds on it.

pub mod scoring;
