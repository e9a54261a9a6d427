/*
 * fuzz_queue_file.c - libFuzzer harness for the queue file parser: the
 * input is parsed as a whole file and as a head alone; when it parses,
 * the envelope is written back and must parse again to the same fields.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_file.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
roundtrip(const struct queue_envelope *env)
{
	struct queue_envelope	 again;
	char			*head, why[128];
	size_t			 len, i;

	memset(&again, 0, sizeof(again));
	head = queue_file_format_head(env, &len);
	if (queue_file_parse_head(head, len, &again, why, sizeof(why)) != QUEUE_PARSE_OK ||
	    strcmp(again.id, env->id) != 0 || strcmp(again.sender, env->sender) != 0 ||
	    again.nrcpts != env->nrcpts || again.body_length != env->body_length)
		abort();
	for (i = 0; i < env->nrcpts; i++)
		if (strcmp(again.rcpts[i].mailbox, env->rcpts[i].mailbox) != 0 ||
		    strcmp(again.rcpts[i].params, env->rcpts[i].params) != 0)
			abort();
	queue_envelope_clear(&again);
	free(head);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_envelope	 env;
	char			*copy = malloc(size + 1), why[128];

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&env, 0, sizeof(env));
	if (queue_file_parse(copy, size, &env, why, sizeof(why)) == QUEUE_PARSE_OK)
		roundtrip(&env);
	queue_envelope_clear(&env);
	if (queue_file_parse_head(copy, size, &env, why, sizeof(why)) == QUEUE_PARSE_OK)
		roundtrip(&env);
	queue_envelope_clear(&env);
	free(copy);
	return 0;
}
