/* Keeps an object library non-empty while its layer has no source yet. */
typedef int ms_keep_translation_unit_nonempty;
