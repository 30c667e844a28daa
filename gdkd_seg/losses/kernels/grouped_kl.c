/* Fused CPU kernel of the grouped KD loss (its definition and numerics: kernels/__init__.py).
 *
 * Straight from the (B, C, *spatial) layout, a block of consecutive pixels at a time: no row-layout copies, no
 * (pixels x classes) temporaries, and the student gradient written from the exponentials already computed, so
 * backward is one multiply by the upstream gradient. Per block:
 *   1. the head classes of each pixel (explicit, or the teacher's top-k) and a penalty plane that is -inf at them;
 *   2. the tail group over all classes with the penalty added: loops over a class plane's contiguous pixels with
 *      no per-class branching, so they vectorise;
 *   3. the head groups from each pixel's few head classes, scalar;
 *   4. per pixel: KLs, masses and the gradient's coefficients; 5. the gradient, vectorised, then its head entries.
 *
 * Compiled twice by cpu.py: -DSCALAR=float -DSUFFIX=f32 -DEXP_IS_FAST=1 (float32 logits, fast_exp below)
 * and -DSCALAR=double -DSUFFIX=f64 -DEXP_IS_FAST=0 (float64, libm's exp). Sums are accumulated in double.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONCAT_(a, b) a##_##b
#define CONCAT(a, b) CONCAT_(a, b)
#define FN(name) CONCAT(name, SUFFIX)
#define MAX_GROUPS 8

/* Mirrored field by field by cpu._Args. Element (image b, class c, pixel p) of a logit tensor lies at
 * (b * num_classes + c) * plane + p; slot j of a head tensor at (b * head_size + j) * plane + p. */
typedef struct {
    const void *student, *teacher;          /* SCALAR */
    int64_t num_images, num_classes, plane;
    int64_t head_size;
    const int64_t *head_indices;            /* explicit head classes, or NULL: the teacher's top head_size */
    const int64_t *head_groups;             /* group of each explicit head slot */
    const int64_t *rank_groups;             /* (head_size,) group of the teacher's j-th largest class */
    int64_t num_groups;                     /* the tail (every class not in the head) is the last group */
    const double *group_weights;            /* (num_groups,) */
    double mass_weight, temperature;
    double mass_clamp;                      /* eps of the authors' mass clamp, or 0: exact masses */
    const uint8_t *valid;                   /* (num_images * plane) or NULL: all valid */
    void *total, *kl_mass, *kl_groups;      /* SCALAR: (P,), (P,), (num_groups, P) */
    void *grad;                             /* SCALAR, like student, for a unit upstream gradient; or NULL */
    int64_t num_threads;                    /* at most */
} GroupedKLArgs;

#define BLOCK 64  /* pixels handled together */
#define IN_TAIL -1  /* head_group of an explicit head slot that belongs to the tail (top-p past its cut) */

#if EXP_IS_FAST
/* exp(x) for x <= 0 (the only arguments here: logits minus their group's maximum), branch-free so that loops
 * vectorise (libm's expf is a call they cannot): x = n·ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor
 * polynomial (truncation error < 1e-8, a few float32 ulps in all), 2^n from the exponent bits; 0 below the
 * float32 normal range (a mass < 1e-38 of the group's largest); NaN stays NaN. */
static inline float fast_exp(float x) {
    float n = (float)-(int32_t)(0.5f - x * 1.44269504f);
    float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f + r * (8.33333333e-3f
              + r * (1.38888889e-3f + r * 1.98412698e-4f))))));
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23};
    float result = x < -87.0f ? 0.0f : p * scale.f;
    return x != x ? x : result;
}
#define EXP fast_exp
#else
#define EXP exp
#endif

typedef struct {
    SCALAR *penalty;                    /* (C, BLOCK): -inf at head classes, 0 at tail classes */
    SCALAR *exp_teacher, *exp_student;  /* (C, BLOCK): exp(z/T − tail max) at tail classes, 0 at head classes */
    int32_t *head_class;                /* (k, BLOCK) */
    int32_t *head_group;                /* (k, BLOCK): group of each head slot, or IN_TAIL */
    SCALAR *head_exp_teacher, *head_exp_student, *top_value;  /* (k, BLOCK) */
} Scratch;

/* Per group g and pixel i of a block: maximum of z/T, Σ exp(z/T − max), Σ e_t·(shifted z_t − shifted z_s), count */
typedef struct {
    SCALAR max_t[MAX_GROUPS][BLOCK], max_s[MAX_GROUPS][BLOCK];
    double sum_t[MAX_GROUPS][BLOCK], sum_s[MAX_GROUPS][BLOCK], cross[MAX_GROUPS][BLOCK];
    int64_t count[MAX_GROUPS][BLOCK];
    SCALAR coef_s[MAX_GROUPS][BLOCK], coef_t[MAX_GROUPS][BLOCK];  /* gradient = coef_s·e_s + coef_t·e_t */
} GroupStats;

/* Step 1: head slots (class, group) of the block's pixels and the penalty plane. */
static void FN(find_heads)(const GroupedKLArgs *a, Scratch *w, const SCALAR *teacher, int64_t image,
                           int64_t pixel, int64_t n) {
    const int64_t C = a->num_classes, plane = a->plane, k = a->head_size, tail = a->num_groups - 1;
    if (a->head_indices) {
        for (int64_t j = 0; j < k; ++j) {
            const int64_t *classes = a->head_indices + (image * k + j) * plane + pixel;
            const int64_t *groups = a->head_groups + (image * k + j) * plane + pixel;
            for (int64_t i = 0; i < n; ++i) {
                w->head_class[j * BLOCK + i] = (int32_t)classes[i];
                w->head_group[j * BLOCK + i] = groups[i] == tail ? IN_TAIL : (int32_t)groups[i];
            }
        }
    } else if (k > 0) {
        /* the teacher's k largest, largest first (ties: the lower class index), by one branch-free bubble step
         * per rank, vectorised across pixels */
        SCALAR candidate_value[BLOCK];
        int32_t candidate_class[BLOCK];
        for (int64_t j = 0; j < k * BLOCK; ++j) {
            w->top_value[j] = -INFINITY;
            w->head_class[j] = -1;
        }
        for (int64_t c = 0; c < C; ++c) {
            const SCALAR *t = teacher + c * plane;
            for (int64_t i = 0; i < n; ++i) {
                candidate_value[i] = t[i];
                candidate_class[i] = (int32_t)c;
            }
            for (int64_t j = 0; j < k; ++j) {
                SCALAR *restrict value = w->top_value + j * BLOCK;
                int32_t *restrict index = w->head_class + j * BLOCK;
#pragma omp simd
                for (int64_t i = 0; i < n; ++i) {
                    SCALAR kept_value = value[i], new_value = candidate_value[i];
                    SCALAR larger = new_value > kept_value ? new_value : kept_value;
                    SCALAR smaller = new_value > kept_value ? kept_value : new_value;
                    int32_t take = new_value > kept_value ? -1 : 0, kept_class = index[i];
                    int32_t new_class = candidate_class[i];
                    value[i] = larger;
                    candidate_value[i] = smaller;
                    index[i] = (new_class & take) | (kept_class & ~take);
                    candidate_class[i] = (kept_class & take) | (new_class & ~take);
                }
            }
        }
        /* slots still free (logits of -inf or NaN, never larger than -inf): the lowest classes not yet taken */
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0, next = 0; j < k; ++j) {
                if (w->head_class[j * BLOCK + i] >= 0) continue;
                for (int taken = 1; taken; ++next) {
                    taken = 0;
                    for (int64_t m = 0; m < k; ++m) taken |= w->head_class[m * BLOCK + i] == next;
                    if (!taken) w->head_class[j * BLOCK + i] = (int32_t)next;
                }
            }
        for (int64_t j = 0; j < k; ++j) {
            int32_t group = a->rank_groups[j] == tail ? IN_TAIL : (int32_t)a->rank_groups[j];
            for (int64_t i = 0; i < n; ++i) w->head_group[j * BLOCK + i] = group;
        }
    }
    memset(w->penalty, 0, sizeof(SCALAR) * C * BLOCK);
    for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < n; ++i)
            if (w->head_group[j * BLOCK + i] != IN_TAIL)
                w->penalty[w->head_class[j * BLOCK + i] * BLOCK + i] = -INFINITY;
}

/* Step 2: the tail group (every class whose penalty is 0), vectorised across pixels. */
static void FN(tail_sums)(const GroupedKLArgs *a, Scratch *w, GroupStats *st, const SCALAR *teacher,
                          const SCALAR *student, int64_t n) {
    const int64_t C = a->num_classes, plane = a->plane, tail = a->num_groups - 1;
    const SCALAR inv_t = (SCALAR)(1.0 / a->temperature);
    SCALAR *max_t = st->max_t[tail], *max_s = st->max_s[tail];
    double *sum_t = st->sum_t[tail], *sum_s = st->sum_s[tail], *cross = st->cross[tail];
    for (int64_t i = 0; i < BLOCK; ++i) {
        max_t[i] = max_s[i] = -INFINITY;
        sum_t[i] = sum_s[i] = cross[i] = 0.0;
    }
    for (int64_t c = 0; c < C; ++c) {
        const SCALAR *t = teacher + c * plane, *s = student + c * plane, *penalty = w->penalty + c * BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
            SCALAR zt = t[i] * inv_t + penalty[i], zs = s[i] * inv_t + penalty[i];
            max_t[i] = zt > max_t[i] ? zt : max_t[i];
            max_s[i] = zs > max_s[i] ? zs : max_s[i];
        }
    }
    for (int64_t i = 0; i < n; ++i)
        if (st->count[tail][i] == 0) max_t[i] = max_s[i] = 0;  /* an empty tail: every exponential below is 0 */
    for (int64_t c = 0; c < C; ++c) {
        const SCALAR *t = teacher + c * plane, *s = student + c * plane, *penalty = w->penalty + c * BLOCK;
        SCALAR *exp_t = w->exp_teacher + c * BLOCK, *exp_s = w->exp_student + c * BLOCK;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
            /* log q(c) = shifted − log(sum): forming the shifted logits first keeps a large common offset of
             * teacher and student out of their difference */
            SCALAR shifted_t = t[i] * inv_t - max_t[i], shifted_s = s[i] * inv_t - max_s[i];
            SCALAR et = EXP(shifted_t + penalty[i]), es = EXP(shifted_s + penalty[i]);
            exp_t[i] = et;
            exp_s[i] = es;
            sum_t[i] += et;
            sum_s[i] += es;
            cross[i] += (double)et * (double)(shifted_t - shifted_s);
        }
    }
}

/* Step 3: the head groups, from each pixel's head slots. */
static void FN(head_sums)(const GroupedKLArgs *a, Scratch *w, GroupStats *st, const SCALAR *teacher,
                          const SCALAR *student, int64_t n) {
    const int64_t plane = a->plane, k = a->head_size;
    const SCALAR inv_t = (SCALAR)(1.0 / a->temperature);
    for (int64_t slot = 0; slot < k * BLOCK; slot += BLOCK)
        for (int64_t i = 0; i < n; ++i) {
            const int64_t g = w->head_group[slot + i], c = w->head_class[slot + i];
            if (g == IN_TAIL) continue;
            SCALAR zt = teacher[c * plane + i] * inv_t, zs = student[c * plane + i] * inv_t;
            st->max_t[g][i] = zt > st->max_t[g][i] ? zt : st->max_t[g][i];
            st->max_s[g][i] = zs > st->max_s[g][i] ? zs : st->max_s[g][i];
        }
    for (int64_t slot = 0; slot < k * BLOCK; slot += BLOCK)
        for (int64_t i = 0; i < n; ++i) {
            const int64_t j = slot + i, g = w->head_group[j], c = w->head_class[j];
            if (g == IN_TAIL) continue;
            SCALAR shifted_t = teacher[c * plane + i] * inv_t - st->max_t[g][i];
            SCALAR shifted_s = student[c * plane + i] * inv_t - st->max_s[g][i];
            SCALAR et = EXP(shifted_t), es = EXP(shifted_s);
            w->head_exp_teacher[j] = et;
            w->head_exp_student[j] = es;
            st->sum_t[g][i] += et;
            st->sum_s[g][i] += es;
            st->cross[g][i] += (double)et * (double)(shifted_t - shifted_s);
        }
}

/* The authors' clamp of group g's log-mass to [log eps, log(1 − eps)] (lower, upper); a mass is above 1 − eps when
 * the other groups' together are below eps, read from their log-masses (1 − 1e-8 has no float32 log). Empty groups
 * have log-mass -inf. Returns the clamped log-mass; *inside (when not NULL) says whether it was left as it is. */
static double clamp_log_mass(const double *log_mass, int64_t G, int64_t g, double lower, double upper,
                             int *inside) {
    double top = -INFINITY, rest = 0.0;
    for (int64_t h = 0; h < G; ++h)
        if (h != g && log_mass[h] > top) top = log_mass[h];
    for (int64_t h = 0; h < G; ++h)
        if (h != g && top > -INFINITY) rest += exp(log_mass[h] - top);
    const double log_rest = top > -INFINITY ? top + log(rest) : -INFINITY;
    if (inside) *inside = log_mass[g] >= lower && log_rest >= lower;
    return log_mass[g] < lower ? lower : log_rest < lower ? upper : log_mass[g];
}

/* Step 4 for one pixel: per-pixel outputs and the gradient's coefficients. With
 * m_g = max_g + log sum_g the log-mass of group g up to a common constant:
 *   KL_g = Σ q_t·(log q_t − log q_s) = cross_g/sum_t,g − log sum_t,g + log sum_s,g
 *   log b(g) = m_g − log Σ_h exp(m_h)
 *   dL/dz_s(c) = T·[w_mass·q_s(c)·gap(g) + w_g·(q_s(c) − q_t(c))] for c in group g, gap(g) = b_s(g) − b_t(g), or
 *   with the clamp b_s(g)·S − u(g)·b~_t(g), S = Σ_h u(h)·b~_t(h) (b~: clamped, u: the student's mass inside). */
static void FN(finish_pixel)(const GroupedKLArgs *a, GroupStats *st, int64_t i, int64_t q) {
    const int64_t G = a->num_groups, num_pixels = a->num_images * a->plane;
    SCALAR *kl_groups = (SCALAR *)a->kl_groups;
    if (a->valid && !a->valid[q]) {
        ((SCALAR *)a->total)[q] = ((SCALAR *)a->kl_mass)[q] = 0;
        for (int64_t g = 0; g < G; ++g) kl_groups[g * num_pixels + q] = st->coef_s[g][i] = st->coef_t[g][i] = 0;
        return;
    }
    double log_sum_t[MAX_GROUPS], log_sum_s[MAX_GROUPS], within = 0.0;
    double mass_t[MAX_GROUPS], mass_s[MAX_GROUPS], top_t = -INFINITY, top_s = -INFINITY;
    for (int64_t g = 0; g < G; ++g) {
        double kl = 0.0;
        if (st->count[g][i]) {
            log_sum_t[g] = log(st->sum_t[g][i]);
            log_sum_s[g] = log(st->sum_s[g][i]);
            kl = st->cross[g][i] / st->sum_t[g][i] - log_sum_t[g] + log_sum_s[g];
            mass_t[g] = st->max_t[g][i] + log_sum_t[g];
            mass_s[g] = st->max_s[g][i] + log_sum_s[g];
            top_t = mass_t[g] > top_t ? mass_t[g] : top_t;
            top_s = mass_s[g] > top_s ? mass_s[g] : top_s;
        }
        kl_groups[g * num_pixels + q] = (SCALAR)kl;
        within += a->group_weights[g] * kl;
    }
    /* group masses: b(g) = exp(m_g − top) / Σ_h exp(m_h − top) */
    double norm_t = 0.0, norm_s = 0.0;
    for (int64_t g = 0; g < G; ++g) {
        if (!st->count[g][i]) continue;
        mass_t[g] = exp(mass_t[g] - top_t);
        mass_s[g] = exp(mass_s[g] - top_s);
        norm_t += mass_t[g];
        norm_s += mass_s[g];
    }
    const double log_norm_t = log(norm_t), log_norm_s = log(norm_s);
    double log_b_t[MAX_GROUPS], log_b_s[MAX_GROUPS], gap[MAX_GROUPS], mass_kl = 0.0;
    for (int64_t g = 0; g < G; ++g) {
        log_b_t[g] = log_b_s[g] = -INFINITY;
        if (!st->count[g][i]) continue;
        log_b_t[g] = st->max_t[g][i] + log_sum_t[g] - top_t - log_norm_t;
        log_b_s[g] = st->max_s[g][i] + log_sum_s[g] - top_s - log_norm_s;
        gap[g] = mass_s[g] / norm_s - mass_t[g] / norm_t;
        if (G > 1 && a->mass_clamp == 0) mass_kl += mass_t[g] / norm_t * (log_b_t[g] - log_b_s[g]);
    }
    if (G > 1 && a->mass_clamp > 0) {
        const double lower = log(a->mass_clamp), upper = log1p(-a->mass_clamp);
        double passed[MAX_GROUPS], passed_sum = 0.0;  /* u(g)·b~_t(g) and S */
        for (int64_t g = 0; g < G; ++g) {
            int student_inside;
            const double t = clamp_log_mass(log_b_t, G, g, lower, upper, NULL);
            const double s = clamp_log_mass(log_b_s, G, g, lower, upper, &student_inside);
            mass_kl += exp(t) * (t - s);
            passed[g] = student_inside ? exp(t) : 0.0;
            passed_sum += passed[g];
        }
        for (int64_t g = 0; g < G; ++g) gap[g] = exp(log_b_s[g]) * passed_sum - passed[g];
    }
    for (int64_t g = 0; g < G; ++g) {
        st->coef_s[g][i] = st->coef_t[g][i] = 0;
        if (!st->count[g][i]) continue;
        st->coef_s[g][i] = (SCALAR)(a->temperature * (a->mass_weight * gap[g] + a->group_weights[g])
                                    / st->sum_s[g][i]);
        st->coef_t[g][i] = (SCALAR)(-a->temperature * a->group_weights[g] / st->sum_t[g][i]);
    }
    ((SCALAR *)a->kl_mass)[q] = (SCALAR)mass_kl;
    ((SCALAR *)a->total)[q] = (SCALAR)(a->temperature * a->temperature * (a->mass_weight * mass_kl + within));
}

/* Steps 1-5 for the n pixels starting at (image, pixel). */
static void FN(run_block)(const GroupedKLArgs *a, Scratch *w, GroupStats *st, int64_t image, int64_t pixel,
                          int64_t n) {
    const int64_t C = a->num_classes, plane = a->plane, G = a->num_groups, k = a->head_size;
    const int64_t offset = image * C * plane + pixel, tail = G - 1;
    const SCALAR *teacher = (const SCALAR *)a->teacher + offset, *student = (const SCALAR *)a->student + offset;

    FN(find_heads)(a, w, teacher, image, pixel, n);
    for (int64_t g = 0; g < G; ++g)
        for (int64_t i = 0; i < BLOCK; ++i) {
            st->max_t[g][i] = st->max_s[g][i] = -INFINITY;
            st->sum_t[g][i] = st->sum_s[g][i] = st->cross[g][i] = 0.0;
            st->count[g][i] = g == tail ? C : 0;
        }
    for (int64_t slot = 0; slot < k * BLOCK; slot += BLOCK)
        for (int64_t i = 0; i < n; ++i)
            if (w->head_group[slot + i] != IN_TAIL) {
                ++st->count[w->head_group[slot + i]][i];
                --st->count[tail][i];
            }
    FN(tail_sums)(a, w, st, teacher, student, n);
    FN(head_sums)(a, w, st, teacher, student, n);
    for (int64_t i = 0; i < n; ++i) FN(finish_pixel)(a, st, i, image * plane + pixel + i);

    if (!a->grad) return;
    SCALAR *grad = (SCALAR *)a->grad + offset;
    const SCALAR *coef_s = st->coef_s[tail], *coef_t = st->coef_t[tail];
    for (int64_t c = 0; c < C; ++c) {
        const SCALAR *exp_t = w->exp_teacher + c * BLOCK, *exp_s = w->exp_student + c * BLOCK;
        SCALAR *grad_c = grad + c * plane;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) grad_c[i] = coef_s[i] * exp_s[i] + coef_t[i] * exp_t[i];
    }
    for (int64_t slot = 0; slot < k * BLOCK; slot += BLOCK)
        for (int64_t i = 0; i < n; ++i) {
            const int64_t j = slot + i, g = w->head_group[j];
            if (g == IN_TAIL) continue;
            grad[w->head_class[j] * plane + i] =
                st->coef_s[g][i] * w->head_exp_student[j] + st->coef_t[g][i] * w->head_exp_teacher[j];
        }
}

/* Pixels first..last-1 on one thread. Returns 0, or 1 when its scratch memory could not be allocated. */
static int FN(run_chunk)(const GroupedKLArgs *a, int64_t first, int64_t last) {
    const size_t C = (size_t)a->num_classes, k = (size_t)(a->head_size > 0 ? a->head_size : 1);
    Scratch w = {malloc(sizeof(SCALAR) * C * BLOCK), malloc(sizeof(SCALAR) * C * BLOCK),
                 malloc(sizeof(SCALAR) * C * BLOCK), malloc(sizeof(int32_t) * k * BLOCK),
                 malloc(sizeof(int32_t) * k * BLOCK), malloc(sizeof(SCALAR) * k * BLOCK),
                 malloc(sizeof(SCALAR) * k * BLOCK), malloc(sizeof(SCALAR) * k * BLOCK)};
    GroupStats *stats = malloc(sizeof(GroupStats));
    int status = 1;
    if (w.penalty && w.exp_teacher && w.exp_student && w.head_class && w.head_group && w.head_exp_teacher
        && w.head_exp_student && w.top_value && stats) {
        /* blocks of consecutive pixels within one image */
        for (int64_t q = first; q < last;) {
            int64_t image = q / a->plane, pixel = q % a->plane, n = a->plane - pixel;
            if (n > BLOCK) n = BLOCK;
            if (n > last - q) n = last - q;
            FN(run_block)(a, &w, stats, image, pixel, n);
            q += n;
        }
        status = 0;
    }
    free(w.penalty);
    free(w.exp_teacher);
    free(w.exp_student);
    free(w.head_class);
    free(w.head_group);
    free(w.head_exp_teacher);
    free(w.head_exp_student);
    free(w.top_value);
    free(stats);
    return status;
}

/* Returns 0 on success, 1 when scratch memory could not be allocated, 2 on more than MAX_GROUPS groups.
 * Threads come from OpenMP: loaded into a PyTorch process whose OpenMP runtime is libgomp, the kernel shares
 * PyTorch's thread pool (two pools would spin against each other). */
int FN(grouped_kl)(const GroupedKLArgs *args) {
    if (args->num_groups < 1 || args->num_groups > MAX_GROUPS) return 2;
    const int64_t num_pixels = args->num_images * args->plane;
    /* at least 32k logits per thread: below that, waking a thread costs more than it saves */
    int64_t num_threads = args->num_threads;
    if (num_threads > num_pixels * args->num_classes / 32768) num_threads = num_pixels * args->num_classes / 32768;
    if (num_threads < 1) num_threads = 1;
    int status = 0;
#pragma omp parallel for num_threads(num_threads) schedule(static, 1) reduction(| : status)
    for (int64_t chunk = 0; chunk < num_threads; ++chunk)
        status |= FN(run_chunk)(args, num_pixels * chunk / num_threads, num_pixels * (chunk + 1) / num_threads);
    return status;
}
