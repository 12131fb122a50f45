/* strings: length, copy, compare, reverse, number formatting and parsing, a tokenizer and a tiny
 * substring search, all on bytes (lbz/stb/lhz/sth heavy code). */
#include "corpus.h"

static const char text[] = "the quick brown fox jumps over the lazy dog 0123456789 -42 +17 e500";

static size_t str_len(const char *s)
{
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}

static char *str_copy(char *d, const char *s)
{
    char *r = d;
    while ((*d++ = *s++))
        ;
    return r;
}

static int str_cmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static void str_reverse(char *s)
{
    size_t n = str_len(s);
    for (size_t i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

static int to_dec(char *out, int32_t v)
{
    uint32_t u = v < 0 ? (uint32_t)-v : (uint32_t)v;
    int n = 0;
    do {
        out[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[n++] = '-';
    out[n] = 0;
    str_reverse(out);
    return n;
}

static int32_t parse_int(const char **sp)
{
    const char *s = *sp;
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    int32_t v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    *sp = s;
    return neg ? -v : v;
}

static const char *find(const char *hay, const char *needle)
{
    size_t n = str_len(needle);
    for (; *hay; hay++)
        if (memcmp(hay, needle, n) == 0)
            return hay;
    return 0;
}

static uint16_t halfwords[16];

int main(void)
{
    char buf[96];
    char num[16];
    uint32_t sum = 0;

    str_copy(buf, text);
    sum = corpus_mix(sum, (uint32_t)str_len(buf));
    str_reverse(buf);
    sum = corpus_mix(sum, (uint32_t)str_cmp(buf, text));
    str_reverse(buf);
    sum = corpus_mix(sum, (uint32_t)str_cmp(buf, text));

    /* Tokenize on spaces; parse the tokens that are numbers, hash the words. */
    const char *p = text;
    int tokens = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        tokens++;
        if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+') {
            int32_t v = parse_int(&p);
            to_dec(num, v);
            sum = corpus_mix(sum, (uint32_t)v);
            sum = corpus_mix(sum, (uint32_t)str_len(num));
        }
        while (*p && *p != ' ') {
            sum = corpus_mix(sum, (uint32_t)(signed char)*p);
            p++;
        }
    }
    sum = corpus_mix(sum, (uint32_t)tokens);
    const char *hit = find(text, "lazy");
    sum = corpus_mix(sum, hit ? (uint32_t)(hit - text) : 0xFFFFFFFFu);
    sum = corpus_mix(sum, find(text, "cat") == 0);

    for (int i = 0; i < 16; i++)
        halfwords[i] = (uint16_t)(text[i] << 8 | text[i + 1]);
    for (int i = 0; i < 16; i++)
        sum = corpus_mix(sum, (uint32_t)(int16_t)halfwords[i]);
    return corpus_report("strings", sum);
}
