# Writes OUTPUT: a C++ file defining saga::persistence::embedded_migrations() from the
# numbered files NNNN_name.sql in MIGRATION_DIR (sorted by name).
file(GLOB files ${MIGRATION_DIR}/*.sql)
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name ${f} NAME)
  file(READ ${f} sql)
  string(FIND "${sql}" ")saga_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name} contains the raw-string delimiter )saga_sql\"")
  endif()
  string(APPEND body "    {\"${name}\", R\"saga_sql(${sql})saga_sql\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp
"// Generated from persistence/migrations by embed_migrations.cmake. Do not edit.
#include \"persistence/migrations.hpp\"

namespace saga::persistence {

const std::vector<migration_file>& embedded_migrations() {
  static const std::vector<migration_file> files = {
${body}  };
  return files;
}

}  // namespace saga::persistence
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
