/*
 * budget.h - per-client budgets of costly work (key generation), in units
 * per minute, shared by every thread of scone-cas. See budget.c.
 */
#ifndef SCONE_CAS_BUDGET_H
#define SCONE_CAS_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct cas_budget;

/* A budget of per_minute units per client key; NULL when out of memory. */
struct cas_budget *cas_budget_new(unsigned per_minute);
void cas_budget_free(struct cas_budget *bu);

/*
 * Take units from key's bucket. False (nothing taken) when the bucket holds
 * fewer: *retry_after_s is then when it will hold enough (60 at most; units
 * above per_minute never fit). Thread-safe.
 */
bool cas_budget_take(struct cas_budget *bu, const uint8_t key[32], unsigned units, unsigned *retry_after_s);
/* Give back units taken but not spent (never above per_minute). */
void cas_budget_refund(struct cas_budget *bu, const uint8_t key[32], unsigned units);

#endif
