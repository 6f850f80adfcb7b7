//! In-process LLM engines.
