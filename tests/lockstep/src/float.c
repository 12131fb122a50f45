/* float (e500mc only, hard float): double and single arithmetic over generated values and edge cases
 * (signed zeros, denormals, overflow, infinities, NaNs), fused multiply-adds, int <-> double
 * conversions, compares, fsel/fres/frsqrte, every rounding mode, and the FPSCR instructions
 * (mffs, mtfsf, mtfsfi, mtfsb0/1, mcrfs). Every result's bits and the FPSCR go into the checksum.
 * The FPSCR exception enables stay off (tests/test_ops_float.py covers them on our core alone). */
#include "corpus.h"

#define N 36

typedef union { double d; uint64_t u; } bits64;
typedef union { float f; uint32_t u; } bits32;

static volatile double values[N];
static volatile float singles[N];
static uint32_t sum = 0;

static uint32_t fpscr(void)
{
    bits64 b;
    __asm__ volatile("mffs %0" : "=f"(b.d));
    return (uint32_t)b.u;
}

static void set_fpscr(uint32_t value)
{
    bits64 b;
    b.u = value;
    __asm__ volatile("mtfsf 0xff, %0" : : "f"(b.d));
}

static void mix_double(double d)
{
    bits64 b;
    b.d = d;
    sum = corpus_mix(sum, (uint32_t)(b.u >> 32));
    sum = corpus_mix(sum, (uint32_t)b.u);
    sum = corpus_mix(sum, fpscr());
}

static void mix_float(float f)
{
    bits32 b;
    b.f = f;
    sum = corpus_mix(sum, b.u);
    sum = corpus_mix(sum, fpscr());
}

static double from_bits(uint64_t u)
{
    bits64 b;
    b.u = u;
    return b.d;
}

static const uint64_t edges[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x0000000000000001ull, 0x000FFFFFFFFFFFFFull,
    0x0010000000000000ull, 0x7FEFFFFFFFFFFFFFull, 0x7FF0000000000000ull, 0xFFF0000000000000ull,
    0x7FF8000000000000ull, 0x7FF4000000000000ull, 0x3FF0000000000000ull, 0xBFF8000000000000ull,
    0x47EFFFFFE0000000ull, 0x47EFFFFFF0000000ull, 0x3810000000000000ull, 0x36A0000000000000ull,
    0x41DFFFFFFFC00000ull, 0xC1E0000000000000ull, 0x41E0000000000000ull, 0x3FB999999999999Aull,
};
#define EDGES (sizeof edges / sizeof edges[0])

static void generate(void)
{
    for (int i = 0; i < N; i++) {
        uint32_t r = corpus_rand();
        int32_t s = (int32_t)corpus_rand();
        if (i < (int)EDGES)
            values[i] = from_bits(edges[i]);
        else
            values[i] = (double)s / (double)((r & 0xFFFF) + 1) * ((r & 0x10000) ? 1e-3 : 7.25);
        singles[i] = (float)((double)(int32_t)corpus_rand() / 65536.0);
    }
}

static void arithmetic(void)
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j += 9) {
            double a = values[i], b = values[j];
            set_fpscr(0);
            mix_double(a + b);
            mix_double(a - b);
            mix_double(a * b);
            mix_double(a / b);
            mix_double(a * b + values[(i + j) % N]);
            mix_double(-(a * b - values[(i + 3 * j) % N]));
        }
    }
}

static void single_precision(void)
{
    for (int i = 0; i < N; i++) {
        float a = singles[i], b = singles[(i * 5 + 1) % N];
        set_fpscr(0);
        mix_float(a + b);
        mix_float(a * b);
        mix_float(a / (b + 0.5f));
        mix_float(a * b + singles[(i + 2) % N]);
        mix_float((float)values[i]);             /* frsp, including overflow and denormals */
        mix_double((double)a * 3.0);
    }
}

static void conversions(void)
{
    for (int i = 0; i < N; i++) {
        double d = values[i];
        set_fpscr(0);
        int32_t s = (int32_t)d;                  /* fctiwz */
        sum = corpus_mix(sum, (uint32_t)s);
        sum = corpus_mix(sum, fpscr());
        uint32_t u = (d > -1.0 && d < 4294967296.0) ? (uint32_t)d : 0;
        sum = corpus_mix(sum, u);
        mix_double((double)(int32_t)corpus_rand());
        mix_double((double)corpus_rand());
        mix_double((double)(int64_t)(((uint64_t)corpus_rand() << 32) | corpus_rand()));
    }
}

static void compares(void)
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j += 7) {
            double a = values[i], b = values[j];
            uint32_t flags = (a < b) | (a <= b) << 1 | (a == b) << 2 | (a > b) << 3 | (a != b) << 4;
            sum = corpus_mix(sum, flags);
        }
    }
    sum = corpus_mix(sum, fpscr());
}

static void estimates_and_select(void)
{
    for (int i = 0; i < N; i++) {
        double a = values[i], b = values[(i + 1) % N], c = values[(i + 2) % N], r;
        float f;
        set_fpscr(0);
        __asm__ volatile("fsel %0, %1, %2, %3" : "=f"(r) : "f"(a), "f"(b), "f"(c));
        mix_double(r);
        __asm__ volatile("fres %0, %1" : "=f"(f) : "f"(a));
        mix_float(f);
        __asm__ volatile("frsqrte %0, %1" : "=f"(r) : "f"(a));
        mix_double(r);
        __asm__ volatile("fnabs %0, %1" : "=f"(r) : "f"(a));
        mix_double(r);
        __asm__ volatile("fabs. %0, %1" : "=f"(r) : "f"(a) : "cr1");
        mix_double(r);
    }
}

#define FUSED(op, a, b, c) do { double r_; \
        __asm__ volatile(op " %0, %1, %2, %3" : "=f"(r_) : "f"(a), "f"(b), "f"(c)); mix_double(r_); } while (0)

static void fused(void)
{
    for (uint32_t mode = 0; mode < 4; mode++) {
        for (int i = 0; i < N; i += 3) {
            double a = values[i], b = values[(i + 5) % N], c = values[(i + 13) % N];
            set_fpscr(mode);
            FUSED("fmadd", a, b, c);
            FUSED("fmsub", a, b, c);
            FUSED("fnmadd", a, b, c);
            FUSED("fnmsub", a, b, c);
            FUSED("fmadds", a, b, c);
            FUSED("fmsubs", a, b, c);
            FUSED("fnmadds", a, b, c);
            FUSED("fnmsubs", a, b, c);
            uint32_t cr;
            __asm__ volatile("fcmpo 5, %1, %2\n\tmfcr %0" : "=r"(cr) : "f"(a), "f"(b) : "cr5");
            sum = corpus_mix(sum, cr & 0x00000F00);
            sum = corpus_mix(sum, fpscr());
        }
    }
}

static void rounding_modes(void)
{
    for (uint32_t mode = 0; mode < 4; mode++) {
        for (int i = 0; i < N; i += 4) {
            double a = values[i], b = values[(i + 7) % N];
            set_fpscr(mode);
            mix_double(a + b);
            mix_double(a * b);
            mix_double(a / b);
            mix_double(a * b + values[(i + 11) % N]);
            mix_float((float)a);
            bits64 t;
            __asm__ volatile("fctiw %0, %1" : "=f"(t.d) : "f"(a));
            sum = corpus_mix(sum, (uint32_t)t.u);
            sum = corpus_mix(sum, (uint32_t)(t.u >> 32));
            sum = corpus_mix(sum, fpscr());
        }
    }
}

static void fpscr_instructions(void)
{
    uint32_t cr;
    set_fpscr(0);
    __asm__ volatile("mtfsb1 3");                /* OX: sets FX too */
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mtfsb1 30");               /* RN bit */
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mtfsb0 3\n\tmtfsb0 0");
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mtfsfi 1, 0xA");           /* UX and XX, FX left alone */
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mtfsfi 0, 0x9");           /* FX and OX written directly */
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mcrfs 2, 1\n\tmfcr %0" : "=r"(cr) : : "cr2");
    sum = corpus_mix(sum, cr & 0x00F00000);
    sum = corpus_mix(sum, fpscr());
    __asm__ volatile("mcrfs 3, 0\n\tmfcr %0" : "=r"(cr) : : "cr3");
    sum = corpus_mix(sum, cr & 0x000F0000);
    sum = corpus_mix(sum, fpscr());
    /* No FPSCR exception enables: QEMU handles them differently (deviation fp_exception_enables). */
    set_fpscr(0);
    __asm__ volatile("fadd. %0, %1, %2\n\tmfcr %3" : "=f"(values[1]), "=r"(cr)
                     : "f"(values[6]), "f"(values[7]) : "cr1");
    sum = corpus_mix(sum, cr & 0x0F000000);
    sum = corpus_mix(sum, fpscr());
}

int float_main(void);

/* Entered from main in float_asm.S with MSR[FP] set. */
int float_main(void)
{
    corpus_seed(0xF10A7);
    generate();
    arithmetic();
    single_precision();
    conversions();
    compares();
    estimates_and_select();
    fused();
    rounding_modes();
    fpscr_instructions();
    return corpus_report("float", sum);
}
