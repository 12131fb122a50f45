/* sort: insertion sort, shell sort, iterative quicksort and a bottom-up merge sort over the same
 * pseudo-random data; checks each result is ordered and checksums them. */
#include "corpus.h"

#define N 48

static int32_t source[N];
static int32_t work[N];
static int32_t scratch[N];

static void insertion_sort(int32_t *a, int n)
{
    for (int i = 1; i < n; i++) {
        int32_t v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void shell_sort(int32_t *a, int n)
{
    for (int gap = n / 2; gap > 0; gap /= 2)
        for (int i = gap; i < n; i++) {
            int32_t v = a[i];
            int j = i;
            for (; j >= gap && a[j - gap] > v; j -= gap)
                a[j] = a[j - gap];
            a[j] = v;
        }
}

static void quick_sort(int32_t *a, int n)
{
    int stack[64];
    int top = 0;
    stack[top++] = 0;
    stack[top++] = n - 1;
    while (top) {
        int hi = stack[--top];
        int lo = stack[--top];
        if (lo >= hi)
            continue;
        int32_t pivot = a[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                int32_t t = a[i]; a[i] = a[j]; a[j] = t;
                i++; j--;
            }
        }
        stack[top++] = lo; stack[top++] = j;
        stack[top++] = i; stack[top++] = hi;
    }
}

static void merge_sort(int32_t *a, int32_t *tmp, int n)
{
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

static uint32_t check(uint32_t sum, const int32_t *a, int n)
{
    uint32_t ordered = 1;
    for (int i = 0; i < n; i++) {
        if (i && a[i - 1] > a[i])
            ordered = 0;
        sum = corpus_mix(sum, (uint32_t)a[i]);
    }
    return corpus_mix(sum, ordered);
}

int main(void)
{
    uint32_t sum = 2166136261u;
    corpus_seed(12345);
    for (int i = 0; i < N; i++)
        source[i] = (int32_t)corpus_rand() >> 8;

    memcpy(work, source, sizeof work); insertion_sort(work, N); sum = check(sum, work, N);
    memcpy(work, source, sizeof work); shell_sort(work, N);     sum = check(sum, work, N);
    memcpy(work, source, sizeof work); quick_sort(work, N);     sum = check(sum, work, N);
    memcpy(work, source, sizeof work); merge_sort(work, scratch, N); sum = check(sum, work, N);
    return corpus_report("sort", sum);
}
