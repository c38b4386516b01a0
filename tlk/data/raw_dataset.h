#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tlk::data {

/// One label of a segmentation dataset: its name and voxel value ("kidney", 1).
struct DatasetLabel {
  std::string name;
  int value = 0;
  friend bool operator==(const DatasetLabel&, const DatasetLabel&) = default;
};

/// What an nnUNet dataset.json says about a dataset.
///
/// Note [dataset.json forms]: nnUNet v2 writes `"channel_names": {"0": "CT"}`, `"labels":
/// {"background": 0, "kidney": 1}` (name -> value; a list of values there is a region, which TLK
/// does not support) and `"file_ending": ".nii.gz"`. nnUNet v1 (and the Medical Segmentation
/// Decathlon) write `"modality": {"0": "CT"}` and `"labels": {"0": "background", "1": "kidney"}`
/// (value -> name) and always use .nii.gz. Both are read; write_dataset_json writes the v2 form.
///
/// Example:
/// ```
/// data::DatasetJson d{.name = "KiTS19", .channel_names = {"CT"},
///                     .labels = {{"background", 0}, {"kidney", 1}, {"tumor", 2}}, .num_training = 210};
/// data::write_dataset_json("Dataset064_KiTS19", d);
/// ```
struct DatasetJson {
  std::string name;
  std::vector<std::string> channel_names;  ///< channel i's name (e.g. "CT"), i = the _XXXX file suffix
  std::vector<DatasetLabel> labels;        ///< sorted by value; background (0) first
  std::int64_t num_training = -1;          ///< "numTraining"; -1 when the file does not say
  std::string file_ending = ".nii.gz";
  int format_version = 2;  ///< 1 or 2: the form the file was read in (see Note [dataset.json forms])

  /// The value of the label called `name`; a tlk::Error listing the names when there is none.
  int label_value(const std::string& name) const;
  /// The name of label `value`, or its number as text when the file does not name it.
  std::string label_name(int value) const;
};

/// One case of a raw dataset: an image file per channel and, where there is one, its label file.
struct RawCase {
  std::string id;                              ///< "case_00010"
  std::vector<std::filesystem::path> images;   ///< one per channel, in channel order
  std::optional<std::filesystem::path> label;  ///< labelsTr/<id><ending>; absent for unlabeled cases
};

/// An nnUNet v2 raw dataset folder: DIR/dataset.json, DIR/imagesTr/<case>_<XXXX><ending> (one file per
/// channel XXXX = 0000, 0001, ...), DIR/labelsTr/<case><ending>, and optionally DIR/imagesTs (and
/// DIR/labelsTs). Cases are sorted by id.
///
/// Training cases without a label file are kept (label absent): a target domain without labels is
/// what domain adaptation trains on. A label file without images is an error.
///
/// Example:
/// ```
/// data::RawDataset ds = data::open_raw_dataset("nnUNet_raw/Dataset064_KiTS19");
/// for (const data::RawCase& c : ds.training) fmt::print("{} {}\n", c.id, c.images[0].string());
/// int kidney = ds.info.label_value("kidney");
/// ```
struct RawDataset {
  std::filesystem::path dir;
  DatasetJson info;
  std::vector<RawCase> training;  ///< imagesTr (+ labelsTr)
  std::vector<RawCase> test;      ///< imagesTs (+ labelsTs where present); empty without imagesTs

  /// The training case called `id`; a tlk::Error when there is none.
  const RawCase& training_case(const std::string& id) const;
};

/// Reads and checks DIR/dataset.json (either form, see Note [dataset.json forms]). A missing file,
/// malformed JSON (the parser's message), missing channel names or labels, a region label, duplicate
/// label values or no background 0 are tlk::Errors naming the file.
DatasetJson read_dataset_json(const std::filesystem::path& file);

/// Lists the cases of the nnUNet raw dataset in `dir` (see RawDataset). Besides read_dataset_json's
/// errors: an image file that is not <case>_<XXXX><ending>, a case missing a channel file, a channel
/// number beyond channel_names, a label file without images, or a numTraining that differs from the
/// number of imagesTr cases are tlk::Errors naming the file or case. nnUNet v2's explicit "dataset"
/// list (case -> {"images": [...], "label": ...}, paths relative to `dir`) is followed when present.
RawDataset open_raw_dataset(const std::filesystem::path& dir);

/// Writes `info` as DIR/dataset.json in nnUNet v2's form (creating DIR), atomically.
/// Example: `data::write_dataset_json(dir, {.channel_names = {"CT"}, .labels = {{"background", 0}, {"kidney", 1}},
/// .num_training = 4});`
void write_dataset_json(const std::filesystem::path& dir, const DatasetJson& info);

/// The file name of channel `channel` of case `id`: "<id>_<XXXX><ending>" (e.g. case_00010_0000.nii.gz).
std::string image_file_name(const std::string& id, int channel, const std::string& file_ending = ".nii.gz");

}  // namespace tlk::data
