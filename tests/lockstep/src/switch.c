/* switch: a bytecode interpreter whose dispatch is a dense switch (jump table through bctr), a sparse
 * switch (compare chains) and calls through a function-pointer table (bctrl). */
#include "corpus.h"

enum { OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_DUP, OP_SWAP, OP_XOR, OP_SHL, OP_JNZ, OP_DEC, OP_DROP,
       OP_ROT, OP_HALT };

static const uint8_t program[] = {
    OP_PUSH, 3, OP_PUSH, 12,                /* acc, counter */
    /* loop at 4: */
    OP_SWAP, OP_PUSH, 7, OP_MUL, OP_PUSH, 5, OP_ADD, OP_DUP, OP_PUSH, 3, OP_SHL, OP_XOR,
    OP_SWAP, OP_DEC, OP_DUP, OP_JNZ, 4, OP_DROP, OP_PUSH, 9, OP_ROT, OP_HALT,
};

static uint32_t run_vm(uint32_t *trace)
{
    uint32_t stack[16];
    int sp = 0;
    int pc = 0;
    for (;;) {
        uint8_t op = program[pc++];
        *trace = corpus_mix(*trace, op);
        switch (op) {
        case OP_PUSH: stack[sp++] = program[pc++]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_SWAP: { uint32_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
        case OP_XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
        case OP_SHL: sp--; stack[sp - 1] <<= stack[sp] & 31; break;
        case OP_JNZ: { uint8_t target = program[pc++]; if (stack[--sp]) pc = target; break; }
        case OP_DEC: stack[sp - 1]--; break;
        case OP_DROP: sp--; break;
        case OP_ROT: { uint32_t t = stack[sp - 1]; stack[sp - 1] = (t << 7) | (t >> 25); break; }
        case OP_HALT: return sp ? stack[sp - 1] : 0;
        default: return 0xBAD;
        }
    }
}

static uint32_t sparse(uint32_t key)
{
    switch (key) {
    case 1: return 11;
    case 10: return 22;
    case 100: return 33;
    case 1000: return 44;
    case 10000: return 55;
    case 65536: return 66;
    case 0x7FFFFFFF: return 77;
    default: return key ^ 0x5A5A;
    }
}

static uint32_t f_add(uint32_t a, uint32_t b) { return a + b; }
static uint32_t f_sub(uint32_t a, uint32_t b) { return a - b; }
static uint32_t f_and(uint32_t a, uint32_t b) { return a & b; }
static uint32_t f_or(uint32_t a, uint32_t b) { return a | b; }
static uint32_t (*const ops[])(uint32_t, uint32_t) = { f_add, f_sub, f_and, f_or };

int main(void)
{
    uint32_t trace = 0;
    uint32_t sum = run_vm(&trace);
    sum = corpus_mix(sum, trace);
    static const uint32_t keys[] = { 0, 1, 2, 10, 99, 100, 1000, 4096, 10000, 65536, 0x7FFFFFFF, 0xFFFFFFFF };
    for (unsigned i = 0; i < sizeof keys / sizeof keys[0]; i++)
        sum = corpus_mix(sum, sparse(keys[i]));
    corpus_seed(77);
    for (int i = 0; i < 40; i++) {
        uint32_t r = corpus_rand();
        sum = corpus_mix(sum, ops[r & 3](r >> 3, sum));
    }
    return corpus_report("switch", sum);
}
