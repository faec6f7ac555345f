/*
 * attest_types.h - the rows of the evidence table, one per file; private
 * to src/attest (attest.c holds the table).
 */
#ifndef SCONE_ATTEST_TYPES_H
#define SCONE_ATTEST_TYPES_H

#include "attest/attest.h"

extern const struct scone_evidence_ops scone_evidence_none;
extern const struct scone_evidence_ops scone_evidence_las;

#endif
