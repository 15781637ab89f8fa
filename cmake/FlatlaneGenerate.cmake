# flatlane_generate(<target> SCHEMAS <fbs>... [INCLUDE_DIRS <dir>...] [LANGUAGES cpp]
#                   [OUTPUT_DIR <dir>])
#
# Creates INTERFACE library <target>: flatc's headers for every file of the schemas' include
# closure plus Flatlane's `<schema>.flatlane.hpp` endpoint headers, on the include path, linked to
# flatlane::runtime. Link it and `#include "<schema>.flatlane.hpp"`.
#
# Regeneration: the rule's output is a stamp file and the headers are byproducts written only
# when their content changes, so Ninja (restat) and Make recompile only what really changed. The
# generator writes a depfile naming every .fbs of the closure: editing an included schema reruns
# it. The byproduct list is taken at configure time; a header for a newly included file is still
# generated before anything that links <target> compiles.
#
# Settings (cache variables): FLATLANE_PYTHON (Python 3 with jinja2 and flatbuffers; Debian's
# /usr/bin/python3 by default), FLATLANE_FLATC (flatc 2.0.8), FLATLANE_GENERATOR_DIR (the folder
# holding the flatlane_gen package).

include_guard(GLOBAL)

if(NOT FLATLANE_GENERATOR_DIR)
  # In the source tree: <repo>/cmake -> <repo>/generator. Installed: flatlaneConfig.cmake sets it.
  set(FLATLANE_GENERATOR_DIR "${CMAKE_CURRENT_LIST_DIR}/../generator")
endif()
get_filename_component(FLATLANE_GENERATOR_DIR "${FLATLANE_GENERATOR_DIR}" ABSOLUTE)

if(NOT FLATLANE_PYTHON)
  # Debian's interpreter has python3-jinja2 and python3-flatbuffers; a pyenv python first on PATH
  # usually has neither.
  find_program(FLATLANE_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  find_program(FLATLANE_PYTHON NAMES python3)
endif()
find_program(FLATLANE_FLATC NAMES flatc)

function(flatlane_generate target)
  cmake_parse_arguments(PARSE_ARGV 1 FG "" "OUTPUT_DIR" "SCHEMAS;INCLUDE_DIRS;LANGUAGES")
  if(NOT FG_SCHEMAS)
    message(FATAL_ERROR "flatlane_generate(${target}): SCHEMAS is required")
  endif()
  if(NOT FG_LANGUAGES)
    set(FG_LANGUAGES cpp)
  endif()
  if(NOT FG_OUTPUT_DIR)
    set(FG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  endif()
  if(NOT FLATLANE_PYTHON OR NOT FLATLANE_FLATC)
    message(FATAL_ERROR "flatlane_generate: needs python3 (FLATLANE_PYTHON) and flatc (FLATLANE_FLATC)")
  endif()

  set(schemas "")
  foreach(s IN LISTS FG_SCHEMAS)
    get_filename_component(s "${s}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND schemas "${s}")
  endforeach()
  set(args "")
  foreach(d IN LISTS FG_INCLUDE_DIRS)
    get_filename_component(d "${d}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args -I "${d}")
  endforeach()
  foreach(l IN LISTS FG_LANGUAGES)
    list(APPEND args --lang "${l}")
  endforeach()
  list(APPEND args --flatc "${FLATLANE_FLATC}" -o "${FG_OUTPUT_DIR}")
  set(gen ${CMAKE_COMMAND} -E env "PYTHONPATH=${FLATLANE_GENERATOR_DIR}" "${FLATLANE_PYTHON}" -m flatlane_gen)

  # The files it will write (byproducts, for `ninja clean` and restat), computed from the IR.
  execute_process(COMMAND ${gen} ${args} --list-outputs ${schemas}
                  OUTPUT_VARIABLE outputs ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "flatlane_generate(${target}): flatlane-gen failed:\n${err}")
  endif()
  string(REPLACE "\n" ";" outputs "${outputs}")
  list(FILTER outputs EXCLUDE REGEX "^$")
  # The generator itself (its code, templates and flatlane.fbs) is an input too.
  file(GLOB_RECURSE gen_sources CONFIGURE_DEPENDS "${FLATLANE_GENERATOR_DIR}/flatlane_gen/*.py"
       "${FLATLANE_GENERATOR_DIR}/flatlane_gen/*.j2" "${FLATLANE_GENERATOR_DIR}/flatlane_gen/*.fbs")
  set(stamp "${FG_OUTPUT_DIR}/${target}.stamp")
  add_custom_command(
    OUTPUT "${stamp}"
    BYPRODUCTS ${outputs}
    COMMAND ${gen} ${args} --stamp "${stamp}" --depfile "${stamp}.d" ${schemas}
    DEPENDS ${schemas} ${gen_sources}
    DEPFILE "${stamp}.d"
    COMMENT "flatlane-gen: ${target}"
    VERBATIM)
  add_custom_target(${target}_generate DEPENDS "${stamp}")

  add_library(${target} INTERFACE)
  target_include_directories(${target} INTERFACE "${FG_OUTPUT_DIR}")
  target_link_libraries(${target} INTERFACE flatlane::runtime)
  add_dependencies(${target} ${target}_generate)
  set_property(TARGET ${target} PROPERTY FLATLANE_GENERATED_FILES "${outputs}")
endfunction()
