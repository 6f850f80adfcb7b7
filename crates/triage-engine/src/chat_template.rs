//! Chat formatting. We do not run Jinja: the template string is only inspected to recognise
//! its family, which is then rendered natively, straight to token ids.

use crate::error::{Error, Result};
use crate::gguf_tokenizer::GgufTokenizer;
use crate::llm::ChatRole;

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

/// A recognised chat format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChatTemplate {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n`, generation prompt `<|im_start|>assistant\n`.
    ChatMl {
        im_start: u32,
        im_end: u32,
        /// System prompt the template injects when the conversation does not open with one.
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    pub(crate) fn detect(template: Option<&str>, tokenizer: &GgufTokenizer) -> Result<Self> {
        let ids = (tokenizer.token_to_id(IM_START), tokenizer.token_to_id(IM_END));
        match template {
            Some(t) if t.contains(IM_START) && t.contains(IM_END) => {
                let (Some(im_start), Some(im_end)) = ids else {
                    return Err(Error::UnsupportedChatTemplate(
                        "ChatML template but the vocabulary lacks <|im_start|>/<|im_end|>".into(),
                    ));
                };
                Ok(Self::ChatMl { im_start, im_end, default_system: chatml_default_system(t) })
            }
            Some(t) => Err(Error::UnsupportedChatTemplate(format!(
                "only ChatML (<|im_start|>/<|im_end|>) templates are supported; got `{}`",
                t.chars().take(120).collect::<String>()
            ))),
            // Older conversions drop the template; the vocabulary still tells ChatML models apart.
            None => match ids {
                (Some(im_start), Some(im_end)) => Ok(Self::ChatMl { im_start, im_end, default_system: None }),
                _ => Err(Error::UnsupportedChatTemplate(
                    "the model has no tokenizer.chat_template and no ChatML tokens".into(),
                )),
            },
        }
    }

    pub(crate) fn default_system(&self) -> Option<&str> {
        match self {
            Self::ChatMl { default_system, .. } => default_system.as_deref(),
        }
    }

    /// Token ids of one whole turn. Turns are independent token runs (control tokens split
    /// them), so a prompt's length is the sum of its turns.
    pub(crate) fn encode_turn(&self, tokenizer: &GgufTokenizer, role: ChatRole, content: &str) -> Result<Vec<u32>> {
        match self {
            Self::ChatMl { im_start, im_end, .. } => {
                let mut ids = vec![*im_start];
                ids.extend(tokenizer.encode(&format!("{}\n{content}", role.as_str()))?);
                ids.push(*im_end);
                ids.extend(tokenizer.encode("\n")?);
                Ok(ids)
            }
        }
    }

    /// Tokens that open the assistant's reply.
    pub(crate) fn generation_prompt(&self, tokenizer: &GgufTokenizer) -> Result<Vec<u32>> {
        match self {
            Self::ChatMl { im_start, .. } => {
                let mut ids = vec![*im_start];
                ids.extend(tokenizer.encode("assistant\n")?);
                Ok(ids)
            }
        }
    }

    /// Tokens that end the assistant's turn, besides the model's EOS.
    pub(crate) fn end_of_turn_ids(&self) -> Vec<u32> {
        match self {
            Self::ChatMl { im_end, .. } => vec![*im_end],
        }
    }
}

/// Finds a literal system prompt the template emits, e.g. SmolLM2's
/// `'<|im_start|>system\nYou are a helpful AI assistant named SmolLM ...<|im_end|>\n'`.
/// Occurrences that splice in template expressions (`' + messages[0]['content'] + '`) are
/// the "caller gave a system message" branch and are skipped.
fn chatml_default_system(template: &str) -> Option<String> {
    let opener = format!("{IM_START}system");
    let mut rest = template;
    while let Some(at) = rest.find(&opener) {
        rest = &rest[at + opener.len()..];
        let body = rest.strip_prefix("\\n").or_else(|| rest.strip_prefix('\n'));
        let Some(body) = body else { continue };
        let Some(end) = body.find(IM_END) else {
            continue;
        };
        let literal = &body[..end];
        if literal.is_empty() || literal.contains(['\'', '"', '{', '}', '+']) {
            continue;
        }
        return Some(literal.replace("\\n", "\n"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf_tokenizer::tests::tiny_metadata;
    use candle_core::quantized::gguf_file::Value;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    // Qwen2.5-style: the literal default sits in the else-branch, after a spliced one.
    const QWEN: &str = r"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}";

    const PLAIN: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn finds_literal_default_system_prompts() {
        assert_eq!(
            chatml_default_system(SMOLLM2).as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        assert_eq!(
            chatml_default_system(QWEN).as_deref(),
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        );
        assert_eq!(chatml_default_system(PLAIN), None);
    }

    #[test]
    fn detects_chatml_and_rejects_other_families() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        let smol = ChatTemplate::detect(Some(SMOLLM2), &tok).unwrap();
        assert_eq!(
            smol,
            ChatTemplate::ChatMl { im_start: 1, im_end: 2, default_system: chatml_default_system(SMOLLM2) }
        );
        assert_eq!(smol.end_of_turn_ids(), [2]);
        assert_eq!(ChatTemplate::detect(None, &tok).unwrap().default_system(), None);
        let llama3 =
            "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>{% endfor %}";
        let err = ChatTemplate::detect(Some(llama3), &tok).unwrap_err();
        assert!(matches!(err, Error::UnsupportedChatTemplate(_)), "{err}");
        assert!(err.to_string().contains("ChatML"), "{err}");
    }

    #[test]
    fn chatml_needs_its_tokens() {
        let mut md = tiny_metadata();
        if let Some(Value::Array(tokens)) = md.get_mut("tokenizer.ggml.tokens") {
            tokens[1] = Value::String("<s>".into());
        }
        let tok = GgufTokenizer::from_metadata(&md).unwrap();
        assert!(ChatTemplate::detect(Some(SMOLLM2), &tok).is_err());
        assert!(ChatTemplate::detect(None, &tok).is_err());
    }

    #[test]
    fn renders_chatml_turns() {
        let tok = GgufTokenizer::from_metadata(&tiny_metadata()).unwrap();
        let t = ChatTemplate::detect(Some(PLAIN), &tok).unwrap();
        let ids = t.encode_turn(&tok, ChatRole::User, "hi").unwrap();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(tok.decode(&ids), "user\nhi\n");
        let gen_prompt = t.generation_prompt(&tok).unwrap();
        assert_eq!(tok.decode(&gen_prompt), "assistant\n");
    }
}
